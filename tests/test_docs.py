"""The documentation is the code's: generated pages equal what the generators print, the outputs reference
covers every output the stacks export, the diagrams are the program's resource graph, and the site builds."""

import importlib.util
import re
import shutil
import subprocess
import sys

import pytest
from harness import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

from docgen import costs, diagrams, outputs, runs


def _docs_script():
    spec = importlib.util.spec_from_file_location("docs_script", ROOT / "scripts" / "docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_are_current():
    # In this process (the example stacks run once, shared with the tests below); `scripts/docs.py --check`
    # does the same from the command line.
    stale = _docs_script().stale(write=False)
    assert not stale, f"stale: {', '.join(map(str, stale))}; run: .venv/bin/python scripts/docs.py"


def test_docs_check_fails_on_a_stale_page_and_the_writer_fixes_it(tmp_path, monkeypatch):
    script = _docs_script()
    page = tmp_path / "page.md"
    page.write_text("stale\n")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "pages", lambda: {page: lambda: "fresh\n"})
    assert [str(p) for p in script.stale(write=False)] == ["page.md"]
    assert page.read_text() == "stale\n"
    script.stale(write=True)
    assert page.read_text() == "fresh\n" and script.stale(write=False) == []


def test_the_config_reference_lists_every_key_with_its_targets():
    from core.config.reference import rows
    from core.config.validation import key_paths

    text = (ROOT / "docs" / "reference" / "config.md").read_text()
    documented = [path for path, *_ in rows()]
    assert documented == key_paths()
    assert all(f"| `{path}` |" in text for path in documented)
    assert "| `placement.instanceType` | string | empty | ecs, ack |" in text


def _documents():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_config_key_the_docs_name_exists():
    """A key renamed or removed in the schema must not live on in the prose (`llm:<path>` anywhere in the docs)."""
    import re

    from core.config.validation import key_paths

    known = set(key_paths())
    prefixes = {p.rsplit(".", i)[0] for p in known for i in range(p.count(".") + 1)}
    leaves = known - {p.rsplit(".", 1)[0] for p in known if "." in p}  # a map's keys are free (cost.prices.<k>)

    def exists(key: str) -> bool:
        key = re.sub(r"\[\d+\]", "", key)
        return key in prefixes or any(key.startswith(f"{leaf}.") for leaf in leaves)

    stale = {
        f"{doc.relative_to(ROOT)}: llm:{key}"
        for doc in _documents()
        for line in doc.read_text().splitlines()
        if "did you mean" not in line  # a quoted error message about a typo
        for key in re.findall(r"(?<![\w/])llm:([a-zA-Z][\w.-]*\w)", line)
        if not exists(key)
    }
    assert not stale, sorted(stale)


def test_every_repository_path_the_docs_name_exists():
    """Repository paths the docs name (`components/...`, `core/...`) exist: layouts change, prose must follow."""
    import re

    missing = {
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in _documents()
        for path in re.findall(
            r"`((?:components|stacks|core|tests|scripts|policy|examples|docs)/[\w./-]+)`", doc.read_text()
        )
        if not (ROOT / path.rstrip("/")).exists() and not path.endswith("/venv")  # a venv the docs have you make
    }
    assert not missing, sorted(missing)


def test_the_outputs_reference_has_every_exported_output_its_targets_and_secrecy():
    rows = {name: (targets, secret, only_with) for name, targets, secret, only_with, _ in outputs.table()}
    exported = {name for example in (*runs.examples(), *runs.variants()) for name in example.run.outputs}
    assert set(rows) == exported
    assert rows["apiKey"][:2] == (["ecs", "acs", "ack", "ack-edge", "gke", "kubernetes"], True)
    assert rows["kubeconfig"][:2] == (["acs", "ack", "ack-edge", "gke"], True)
    assert rows["modelClaim"][0] == ["kubernetes"]
    assert rows["publicApiUrl"][2] == "`access.public`"
    assert rows["sshCommand"] == (["ecs", "acs"], False, "`access.sshCidrs`")
    text = (ROOT / "docs" / "reference" / "outputs.md").read_text()
    assert "| `costEstimate` | ecs, acs, ack, ack-edge, gke | no |" in text


def test_an_output_without_a_description_fails_the_reference(monkeypatch):
    from core import outputs as described

    monkeypatch.setattr(outputs, "OUTPUTS", {k: v for k, v in described.OUTPUTS.items() if k != "cloudBurst"})
    with pytest.raises(outputs.UndescribedOutput, match="cloudBurst"):
        outputs.table()
    monkeypatch.setattr(outputs, "OUTPUTS", {**described.OUTPUTS, "noSuchOutput": "x"})
    with pytest.raises(outputs.UndescribedOutput, match="noSuchOutput"):
        outputs.table()


def _edges(dot: str) -> set[tuple[str, str]]:
    labels = dict(re.findall(r'(n\d+) \[label="([^"]+)"', dot))
    return {(labels[a], labels[b]) for a, b in re.findall(r"(n\d+) -> (n\d+);", dot)}


def test_a_diagram_is_the_resource_graph_of_the_targets_example_stack():
    example = runs.example_of("acs")
    dot = diagrams.graph(example.run, example.stack, "acs")
    edges = _edges(dot)
    # The cluster's API server is whitelisted, then the Kubernetes provider, which every Kubernetes object goes
    # through, is built (an edge implied by that path is not drawn).
    assert ("cs ManagedKubernetes\\ncluster", "dynamic resource\\napi-access-listener") in edges
    assert ("dynamic resource\\napi-access-listener", "kubernetes provider\\nk8s") in edges
    assert ("kubernetes provider\\nk8s", "Namespace\\nnamespace") in edges
    # The import workers' invocations complete before the serving workload and its Services, which are created
    # beside it (a load balancer provisions while the pods load).
    from harness import settings_for

    from core.durations import import_workers

    invocations = f"{import_workers(settings_for('acs').model)} x ecs EcsInvocation"
    assert (invocations, "Deployment\\nllm-acs") in edges
    assert (invocations, "2 x Service") in edges and ("Deployment\\nllm-acs", "2 x Service") not in edges
    # Components are boxes around their resources.
    assert 'label="ManagedCluster: llm-acs"' in dot and 'label="ServingWorkload: llm-acs"' in dot
    # Every resource of the run is drawn (providers without inputs from other resources aside).
    drawn = sum(int(m) if m else 1 for m in re.findall(r'label="(?:(\d+) x )?[^"]+", fillcolor', dot))
    custom = [r for r in example.run.resources if not diagrams._is_component(r)]
    assert drawn == len([r for r in custom if not r.type.startswith(diagrams.PROVIDER_PREFIX) or r.dependencies])


def test_a_diagram_leaves_out_arrows_a_longer_path_implies():
    assert diagrams._reduce({("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")}) == {("a", "b"), ("b", "c"), ("c", "d")}
    assert diagrams._reduce({("a", "b"), ("a", "c")}) == {("a", "b"), ("a", "c")}


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (scripts/test.sh installs it)")
def test_every_diagram_renders_with_graphviz():
    for target in runs.TARGET_EXAMPLES:
        source = (ROOT / "docs" / "diagrams" / f"{target}.dot").read_text()
        result = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True, check=False)
        assert result.returncode == 0 and "<svg" in result.stdout, (target, result.stderr)


def test_the_costs_page_sums_only_cited_prices_and_names_what_is_looked_up_live():
    text = (ROOT / "docs" / "costs.md").read_text()
    # The mocks quote a made-up live price: it never reaches the page's totals.
    assert "9.5" not in text
    assert "- `ECS/Instance`: dev, prod, acs, acs-r1, ack, ack-edge" in text
    gke = next(e for e in runs.examples() if e.stack == "gke").run.outputs["costEstimate"]
    assert costs._summary(gke) == (f"{gke['hourlyKnownPart']:.4f} USD", 0, len(gke["unknown"]))
    assert "| `kubernetes` | kubernetes | no `costEstimate` | | |" in text


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [
        ("dev", {"model": "QwQ-32B"}),
        ("ack", {"model": "DeepSeek-R1", "placement.instanceType": "ecs.gn7i-8x.16xlarge"}),
    ],
)
def test_the_sizing_page_quotes_the_programs_own_messages(stack, overrides):
    from harness import settings_for

    from core.config.problems import ConfigError

    with pytest.raises(ConfigError) as refused:
        settings_for(stack, overrides)
    message = str(refused.value).split("  - ", 1)[1].strip()
    assert message in (ROOT / "docs" / "sizing.md").read_text()


def test_every_target_page_follows_the_skeleton_and_shows_its_diagram():
    skeleton = [
        "Before you begin",
        "What gets created",
        "Deploy",
        "Call the API",
        "Scale or change the model",
        "Costs",
        "Troubleshoot",
        "Clean up",
    ]
    for target in runs.TARGET_EXAMPLES:
        text = (ROOT / "docs" / "targets" / f"{target}.md").read_text()
        assert re.findall(r"^## (.+)$", text, re.M) == skeleton, target
        assert f"[![Resources of the {target} target](../diagrams/{target}.svg)](../diagrams/{target}.svg)" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (scripts/test.sh installs it)")
def test_the_site_hook_turns_each_diagram_into_svg_and_fails_on_one_dot_cannot_draw():
    from mkdocs.config import load_config
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File, Files
    from mkdocs_hooks import on_files

    config = load_config(str(ROOT / "mkdocs.yml"))
    config.plugins._current_plugin = "test"  # what a build sets before File.generated is called
    drawn = on_files(Files([File.generated(config, "diagrams/x.dot", content='digraph { a -> "b" }')]), config)
    assert [f.src_uri for f in drawn] == ["diagrams/x.svg"] and "<svg" in drawn.get_file_from_path(
        "diagrams/x.svg"
    ).content_string  # pyright: ignore[reportOptionalMemberAccess]
    with pytest.raises(PluginError, match=r"docs/diagrams/bad\.dot"):
        on_files(Files([File.generated(config, "diagrams/bad.dot", content="digraph { a -> ")]), config)


README_READY_ROWS = {  # the README's time-to-ready rows: which stacks and variants each row's figures are, in order
    "dev / prod, engine image from your ACR in the region": [
        "dev, engine image from your ACR in the region",
        "prod, engine image from your ACR in the region",
    ],
    "dev (first host; prepared image; prepared image + weights streamed in the region)": [
        "dev",
        "dev, prepared image",
        "dev, prepared image, weights in the region",
    ],
    "prod (first host; prepared image + weights streamed in the region)": [
        "prod",
        "prod, prepared image, weights in the region",
    ],
    "acs / acs-r1 (acs-r1 streamed from OSS)": ["acs", "acs-r1", "acs-r1, streamed from OSS"],
    "acs with `engine.mirror`": ["acs, engine image mirrored into ACR EE"],
    "acs, vLLM's image from your ACR in the region, streamed from OSS": [
        "acs, vLLM's image from your ACR in the region, streamed from OSS"
    ],
    "ack / ack-edge (second run)": ["ack", "ack-edge"],
    "ack with `engine.mirror`": ["ack, engine image mirrored into ACR EE"],
    "gke": ["gke"],
}


# docs/targets/ecs-prepared-image.md, "What they save": each table's columns, as variants of `{}` (dev or prod).
ECS_PAGE_TABLES = [
    ["{}", "{}, prepared image", "{}, prepared image, weights copied from the region"],
    [
        "{}, engine image from your ACR in the region",
        "{}, weights copied from the region",
        "{}, engine image from your ACR, weights copied from the region",
    ],
    ["{}, prepared image, weights copied from the region", "{}, prepared image, weights in the region"],
]


def table_cells(line: str) -> list[str]:
    """A Markdown table row's cells, stripped (a line that is no row gives one cell, itself)."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_the_ecs_prepared_image_page_quotes_the_models_minutes():
    from docgen.ready_time import rows

    modelled = {r.name: r.plan.total for r in rows()}
    text = (ROOT / "docs/targets/ecs-prepared-image.md").read_text()
    section = text.split("## What they save (modelled)", 1)[1].split("\n## ", 1)[0]
    table, checked = -1, 0
    for line in section.splitlines():
        cells = table_cells(line)
        if cells[0] == "stack":
            table += 1
        elif cells[0].split(" ", 1)[0] in ("dev", "prod") and len(cells) > 1:
            stack = cells[0].split(" ", 1)[0]
            columns = ECS_PAGE_TABLES[table]
            assert cells[1 : 1 + len(columns)] == [f"{modelled[c.format(stack)]:.1f}" for c in columns], line
            checked += 1
    assert checked == 2 * len(ECS_PAGE_TABLES)


def test_the_readme_quotes_the_models_minutes_and_goals_for_every_example_stack():
    from docgen.ready_time import rows

    modelled = {r.name: r for r in rows()}
    text = (ROOT / "README.md").read_text()
    section = text.split("## Time to a serving API", 1)[1].split("\n## ", 1)[0]
    found = {}
    for line in section.splitlines():
        cells = table_cells(line)
        if len(cells) == 3 and cells[0] in README_READY_ROWS:
            found[cells[0]] = (re.findall(r"\d+(?:\.\d+)?", cells[1]), re.findall(r"\d+(?:\.\d+)?", cells[2]))
    assert set(found) == set(README_READY_ROWS)
    for label, names in README_READY_ROWS.items():
        minutes, goals = found[label]
        assert minutes == [f"{modelled[n].plan.total:.1f}" for n in names], label
        assert [float(g) for g in goals] == [modelled[n].goal for n in names], label
    assert {n for names in README_READY_ROWS.values() for n in names} >= {
        r.name for r in rows() if r.goal is not None and "ack, streamed" not in r.name
    }


# The README's chooser: per target, the stacks (or variants) whose modelled minutes its row quotes, in order.
README_CHOOSER_ROWS = {
    "ecs": ["dev", "dev, prepared image, weights in the region"],
    "acs": ["acs"],
    "ack": ["ack"],
    "ack-edge": ["ack-edge"],
    "gke": ["gke", "gke-l4"],
    "kubernetes": ["kubernetes"],
}


def test_the_readme_chooser_quotes_the_models_minutes_for_every_target():
    from docgen.ready_time import rows
    from harness import settings_for

    from core.ready_time import timeline

    modelled = {r.name: r.plan.total for r in rows()}
    text = (ROOT / "README.md").read_text()
    section = text.split("## Choose a target", 1)[1].split("\n## ", 1)[0]
    header, found = None, {}
    for line in section.splitlines():
        cells = table_cells(line)
        if cells[0] == "target":
            header = cells
        elif header and len(cells) == len(header) and cells[0].startswith("["):
            target = re.match(r"\[`([a-z-]+)`\]", cells[0]).group(1)
            found[target] = re.findall(r"\d+\.\d", cells[header.index("modelled minutes to a serving API")])
    assert set(found) == set(README_CHOOSER_ROWS)
    for target, names in README_CHOOSER_ROWS.items():
        minutes = [modelled[n] if n in modelled else timeline(settings_for(n)).total for n in names]
        assert found[target] == [f"{m:.1f}" for m in minutes], target


def test_every_assumed_figure_a_missed_goal_rests_on_says_where_a_run_shows_it():
    """docs/reference/ready-time.md "What a run on a cloud would settle": each assumed figure on the critical path of
    a goal the model misses names where a real `pulumi up` shows it, so a run can replace it with a measurement."""
    from docgen.ready_time import rows, to_measure

    from components.alibaba.host_scripts import CONTAINER_NAME
    from core import durations

    listed = to_measure(rows())
    assert [name for name, figure, _ in listed if not figure.measure] == []
    assert all(figure.kind == "A" and on for _, figure, on in listed)
    assert f"docker logs {CONTAINER_NAME}" in durations.ENGINE_LOG  # the ecs engine container's name


def test_the_serving_page_quotes_each_ecs_stacks_modelled_start_and_readiness_timeout():
    from harness import settings_for

    from core.durations import ecs_readiness

    text = (ROOT / "docs/serving.md").read_text()
    for stack in ("dev", "prod"):
        host = settings_for(stack).ecs
        minutes = sum(s.minutes for s in ecs_readiness(settings_for(stack).model, host.egress_mbps, host.start).steps)
        row = next(line for line in text.splitlines() if line.startswith(f"| {stack} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == f"{minutes:.1f} min at {host.egress_mbps} Mbit/s", row
        assert cells[4] == f"**{host.readiness_timeout_minutes} min**", row
