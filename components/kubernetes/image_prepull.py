"""The engine image on the GPU nodes before the serving pods need it: a DaemonSet on the GPU pool that runs the
image's `sleep` and nothing else.

The serving workload waits for the model import; the GPU nodes often come up earlier. This DaemonSet does not
wait for the import, so each GPU node pulls the 10-20 GB engine image as soon as it is ready, and the serving
pod that follows finds it there and starts loading at once. The container keeps running so that the kubelet's
image garbage collection, which removes only images no container uses, keeps the image. It asks for almost
nothing (the serving pod takes the node's GPUs and most of its CPU and memory), runs as nobody with no
privileges, no capability and the runtime's default seccomp profile (components/kubernetes/hardening.py: it passes
Pod Security "restricted", above the namespace's "baseline"), needs no network (the kubelet pulls the image, not
the pod: the namespace's default-deny NetworkPolicies leave it nothing to reach and nothing reaches it), and mounts
no token. A serving pod that starts before the pull is done pulls the same image itself (IfNotPresent); the
runtime fetches each layer once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.hardening import container_security, pod_security
from components.kubernetes.objects import manifest

LABELS = {"app": "llm-engine-prepull"}
NOBODY = 65534


@dataclass(frozen=True)
class ImagePrepullArgs:
    namespace: pulumi.Input[str]
    image: str
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, object]] = ()
    depends_on: Sequence[pulumi.Resource] = ()  # e.g. the nodes' grant to read the registry


def prepull_spec(args: ImagePrepullArgs) -> dict:
    return {
        "selector": {"matchLabels": dict(LABELS)},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": dict(LABELS)},
            "spec": {
                "nodeSelector": dict(args.node_selector),
                "tolerations": [dict(t) for t in args.tolerations],
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 0,
                "securityContext": {
                    **pod_security(),
                    "runAsUser": NOBODY,
                    "runAsGroup": NOBODY,
                    "runAsNonRoot": True,
                },
                "containers": [
                    {
                        "name": "engine-image",
                        "image": args.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", "infinity"],
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"cpu": "50m", "memory": "64Mi"},
                        },
                        "securityContext": container_security(run_as_user=NOBODY, read_only_root=True),
                    }
                ],
            },
        },
    }


class ImagePrepull(pulumi.ComponentResource):
    daemon_set: k8s.apps.v1.DaemonSet

    def __init__(self, name: str, args: ImagePrepullArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:ImagePrepull", name, None, opts)
        self.daemon_set = k8s.apps.v1.DaemonSet(
            name,
            metadata={
                "name": "llm-engine-prepull",
                "namespace": args.namespace,
                "labels": dict(LABELS),
                # Created and left to pull: `pulumi up` does not wait for its pods (pulumi-kubernetes' skipAwait);
                # the serving workload waits for the nodes, and a Flex-start pool has none until serving asks.
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec=manifest(prepull_spec(args)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"daemonSet": self.daemon_set.metadata["name"]})
