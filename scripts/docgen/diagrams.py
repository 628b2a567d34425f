"""docs/diagrams/<target>.dot: the resources a target creates and what each waits for, in Graphviz's DOT.

Drawn from the registrations the harness records when the target's example stack runs under the mocks: each
resource's type, name and parent (the component that groups it) and its dependencies (the resources whose
outputs it reads, and its depends_on). The MkDocs hook docs/hooks/diagrams.py renders the DOT to SVG with
Graphviz's `dot` when the site is built.

Readability over completeness, each rule stated on the page:
- components (this program's ComponentResources) are boxes around their resources;
- resources of one type under one parent are one node, "3 x PersistentVolume";
- an arrow A -> B means B waits for A; arrows implied by a longer path are left out (transitive reduction);
- providers are drawn only when built from another resource's outputs (the cluster's kubeconfig).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import harness

COMPONENT_PACKAGE = "llm:"  # the program's own component types, e.g. llm:kubernetes:ServingWorkload
PROVIDER_PREFIX = "pulumi:providers:"
# Fill colour per package (light, so black text stays readable); the target pages name them.
COLOURS = {
    "alicloud": "#fde3cf",
    "gcp": "#d7e6fb",
    "kubernetes": "#e6e1f7",
    "random": "#eeeeee",
    "pulumi-python": "#eeeeee",
    "pulumi": "#f3f0c8",
}


@dataclass
class Node:
    key: str
    label: str
    package: str
    parent: str  # the component's URN, "" at the top
    urns: list[str] = field(default_factory=list)


def _is_component(resource: harness.Resource) -> bool:
    return resource.type.startswith(COMPONENT_PACKAGE)


def _short_type(type_: str) -> str:
    """`alicloud:vpc/natGateway:NatGateway` -> `vpc NatGateway`; `kubernetes:core/v1:Secret` -> `Secret`."""
    package, module, name = type_.split(":")
    if type_.startswith(PROVIDER_PREFIX):
        return f"{name} provider"
    if package == "kubernetes":
        return {"helm.sh/v3": "Helm release"}.get(module, name)
    if package == "pulumi-python":
        return "dynamic resource"
    group = module.split("/")[0]
    return name if group in ("index", "") else f"{group} {name}"


def _short_name(name: str, stack: str) -> str:
    for prefix in (f"{harness.PROJECT}-{stack}-", f"{stack}-"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return name


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'  # a label keeps its \\n line breaks


def _reduce(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Drop u -> v when v can be reached from u another way (the graph's transitive reduction, if acyclic)."""
    successors: dict[str, set[str]] = defaultdict(set)
    for u, v in edges:
        successors[u].add(v)

    def reachable(start: str, skip: tuple[str, str]) -> set[str]:
        seen: set[str] = set()
        todo = [w for w in successors[start] if (start, w) != skip]
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            todo.extend(successors[node])
        return seen

    return {(u, v) for u, v in edges if v not in reachable(u, (u, v))}


def graph(run: harness.Run, stack: str, target: str) -> str:
    """The DOT text of `run`'s resource graph (deterministic: sorted, no ids or addresses)."""
    components = {r.urn: r for r in run.resources if _is_component(r)}
    drawn_providers = {r.urn for r in run.resources if r.type.startswith(PROVIDER_PREFIX) and r.dependencies}

    def drawn(resource: harness.Resource) -> bool:
        if _is_component(resource):
            return False
        return not resource.type.startswith(PROVIDER_PREFIX) or resource.urn in drawn_providers

    def container(resource: harness.Resource) -> str:
        parent = resource.parent
        return parent if parent in components else ""

    nodes: dict[str, Node] = {}
    node_of: dict[str, str] = {}
    groups: dict[tuple[str, str], list[harness.Resource]] = defaultdict(list)
    for resource in run.resources:
        if drawn(resource):
            groups[(container(resource), resource.type)].append(resource)
    for (parent, type_), members in groups.items():
        key = f"{parent}/{type_}"
        if len(members) == 1:
            label = f"{_short_type(type_)}\\n{_short_name(members[0].name, stack)}"
        else:
            label = f"{len(members)} x {_short_type(type_)}"
        nodes[key] = Node(key, label, type_.split(":")[0], parent, [m.urn for m in members])
        for member in members:
            node_of[member.urn] = key

    edges: set[tuple[str, str]] = set()
    for resource in run.resources:
        if resource.urn not in node_of:
            continue
        needs = list(resource.dependencies)
        provider = resource.provider.rsplit("::", 1)[0]  # "<provider URN>::<provider id>"
        if provider in drawn_providers:
            needs.append(provider)
        for need in needs:
            if need in node_of and node_of[need] != node_of[resource.urn]:
                edges.add((node_of[need], node_of[resource.urn]))
    edges = _reduce(edges)

    ids = {key: f"n{i}" for i, key in enumerate(sorted(nodes))}
    children: dict[str, list[str]] = defaultdict(list)  # component URN -> its child components' URNs
    for urn in sorted(components):
        children[container(components[urn])].append(urn)
    lines = [
        f"// Generated by scripts/docs.py from the {stack} example stack (target {target}) run under the mocks.",
        f"digraph {_quote(target)} {{",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.15, ranksep=0.35, newrank=true, pad=0.1];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, margin="0.08,0.03", '
        "height=0.3];",
        '  edge [color="#666666", arrowsize=0.6];',
    ]

    def emit(parent: str, indent: str) -> None:
        for key in sorted(k for k, n in nodes.items() if n.parent == parent):
            node = nodes[key]
            colour = COLOURS.get(node.package, "#ffffff")
            lines.append(f"{indent}{ids[key]} [label={_quote(node.label)}, fillcolor={_quote(colour)}];")
        for child in children.get(parent, []):
            component = components[child]
            kind = component.type.split(":")[-1]
            name = _short_name(component.name, stack)
            cluster = f"cluster_{ids_of_component[child]}"
            lines.append(f"{indent}subgraph {cluster} {{")
            lines.append(
                f'{indent}  label={_quote(f"{kind}: {name}")}; style="rounded,dashed"; color="#999999"; '
                'fontsize=10; labeljust="l";'
            )
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    ids_of_component = {urn: str(i) for i, urn in enumerate(sorted(components))}
    emit("", "  ")
    for u, v in sorted(edges, key=lambda e: (ids[e[0]], ids[e[1]])):
        lines.append(f"  {ids[u]} -> {ids[v]};")
    lines.append("}")
    return "\n".join(lines) + "\n"
