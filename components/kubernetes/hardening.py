"""Pod hardening every workload of the program shares: the seccomp profile, capabilities, privilege escalation,
and the namespace's Pod Security Admission labels.

Every container (init containers too) runs with the container runtime's default seccomp profile, no Linux
capabilities and no privilege escalation; a container whose image does not need root runs as a fixed non-root user
(the gateway). The engine, import and benchmark images run as root (vLLM's and SGLang's images, and pip installing
into the image's Python, write under root-owned paths): they keep uid 0 but without any capability, so root there
can do no more than any user on the files it owns. GPUs come from the device plugin, which needs no privilege in the
pod (NVIDIA device plugin: the kubelet hands the device nodes to the container).

Pod Security Admission (kubernetes.io/docs/concepts/security/pod-security-standards): "restricted" requires
runAsNonRoot, which the engine images do not allow, so the serving namespace enforces "baseline" (no privileged
containers, host namespaces, hostPath volumes or added capabilities) and warns and audits at "restricted"; a
namespace whose GPU pods mount node directories (gke's NCCL gIB plugin over RDMA: hostPath) can only be
"privileged", with warnings at "baseline".
"""

from __future__ import annotations

from typing import Optional

RUNTIME_DEFAULT_SECCOMP = {"type": "RuntimeDefault"}
PSA_VERSION = "latest"


def container_security(run_as_user: Optional[int] = None, read_only_root: bool = False) -> dict:
    """A container's securityContext: RuntimeDefault seccomp, no capabilities, no escalation, not privileged."""
    context: dict = {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }
    if run_as_user is not None:
        context |= {"runAsNonRoot": True, "runAsUser": run_as_user, "runAsGroup": run_as_user}
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    return context


def pod_security() -> dict:
    """A pod's securityContext: the RuntimeDefault seccomp profile for every container, injected ones included."""
    return {"seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP)}


def pod_security_labels(host_paths: bool) -> dict[str, str]:
    """Pod Security Admission labels for the serving namespace (module docstring)."""
    enforce, warn = ("privileged", "baseline") if host_paths else ("baseline", "restricted")
    labels = {}
    for mode, level in (("enforce", enforce), ("warn", warn), ("audit", warn)):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = PSA_VERSION
    return labels
