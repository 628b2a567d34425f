"""Pod hardening on every Kubernetes target: each container (init containers and the import and benchmark Jobs too)
runs with the RuntimeDefault seccomp profile, no capabilities and no privilege escalation; pods mount no
service-account token; the serving namespace carries Pod Security Admission labels its pods pass."""

from __future__ import annotations

import pytest
from harness import run_stack

from components.kubernetes.hardening import pod_security_labels

STACKS = [
    ("acs", {}),
    ("acs-r1", {}),
    ("ack", {}),
    ("ack-edge", {}),
    ("gke", {}),
    ("gke", {"gke.rdma": True, "placement.podsPerReplica": 2, "gpuNodes.min": 2}),
    ("kubernetes", {}),
]
IDS = ["acs", "acs-lws", "ack", "ack-edge", "gke", "gke-two-nodes", "kubernetes"]


def pod_templates(run) -> list[tuple[str, dict]]:
    """(name, pod spec) of every pod template in the serving namespace."""
    found = []
    namespace = run.kubernetes_object("Namespace")["metadata"]["name"]
    for o in run.kubernetes_objects():
        spec = o.get("spec") or {}
        if o["kind"] in ("Deployment", "Job") or (o["kind"] == "DaemonSet" and o["metadata"]["namespace"] == namespace):
            found.append((o["metadata"]["name"], spec["template"]["spec"]))
        elif o["kind"] == "LeaderWorkerSet":
            template = spec["leaderWorkerTemplate"]
            found += [("leader", template["leaderTemplate"]["spec"]), ("worker", template["workerTemplate"]["spec"])]
    return found


@pytest.mark.parametrize("stack,overrides", STACKS, ids=IDS)
def test_every_container_is_confined(stack, overrides):
    run = run_stack(stack, overrides)
    templates = pod_templates(run)
    kinds = {name.rsplit("-", 1)[-1] for name, _ in templates}
    # Only `kubernetes` imports in the cluster: gke with a Cloud Run job, the Alibaba targets on ECS workers.
    assert ("import" in kinds) == (stack == "kubernetes")
    for name, pod in templates:
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False, where
            assert "add" not in context["capabilities"], where


@pytest.mark.parametrize("stack,overrides", STACKS, ids=IDS)
def test_the_namespace_enforces_baseline_unless_its_pods_mount_node_directories(stack, overrides):
    run = run_stack(stack, overrides)
    namespace = run.kubernetes_object("Namespace")
    labels = namespace["metadata"]["labels"]
    host_paths = any("hostPath" in v for _, pod in pod_templates(run) for v in pod.get("volumes", []))
    assert host_paths == (overrides.get("placement.podsPerReplica", 1) > 1 and stack == "gke")
    # acs.fluid: Fluid's cache pods and injected sidecar run in the namespace with privileges not known here.
    fluid = any(o["kind"] == "Dataset" for o in run.kubernetes_objects())
    privileged = host_paths or fluid
    assert labels["pod-security.kubernetes.io/enforce"] == ("privileged" if privileged else "baseline")
    assert labels["pod-security.kubernetes.io/warn"] == ("baseline" if privileged else "restricted")
    for _, pod in pod_templates(run):
        if labels["pod-security.kubernetes.io/enforce"] == "baseline":
            assert not baseline_violations(pod)


def baseline_violations(pod: dict) -> list[str]:
    """What the Pod Security Standards' baseline profile forbids, for the fields this program sets."""
    found = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(key)
    found += [f"hostPath volume {v['name']}" for v in pod.get("volumes", []) if "hostPath" in v]
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{container['name']} privileged")
        if context.get("capabilities", {}).get("add"):
            found.append(f"{container['name']} adds capabilities")
        if any(p.get("hostPort") for p in container.get("ports", [])):
            found.append(f"{container['name']} hostPort")
    return found


def test_the_baseline_checker_catches_what_baseline_forbids():
    assert baseline_violations({"hostNetwork": True, "containers": []}) == ["hostNetwork"]
    pod = {
        "volumes": [{"name": "gib", "hostPath": {"path": "/x"}}],
        "containers": [{"name": "c", "securityContext": {"privileged": True}}],
    }
    assert baseline_violations(pod) == ["hostPath volume gib", "c privileged"]


def test_psa_labels():
    assert pod_security_labels(False)["pod-security.kubernetes.io/enforce"] == "baseline"
    assert pod_security_labels(True)["pod-security.kubernetes.io/audit"] == "baseline"
    assert pod_security_labels(False)["pod-security.kubernetes.io/enforce-version"] == "latest"
