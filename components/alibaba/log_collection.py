"""The serving pods' stdout and stderr into an SLS logstore, through ACK's logtail-ds add-on.

The collection is declared with SLS's current CRD, ClusterAliyunPipelineConfig
(telemetry.alibabacloud.com/v1alpha1; the older AliyunLogConfig is no longer maintained, per the
SLS docs "collect container logs with CRDs"): the operator creates the logstore in the cluster's
log project and pushes the pipeline. The `input_container_stdio` and `flusher_sls` plugin names and
their fields follow the iLogtail plugin docs; not checked against a live cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

RETENTION_DAYS = 30


@dataclass(frozen=True)
class LogCollectionArgs:
    project: pulumi.Input[str]  # the cluster's SLS project, k8s-log-<cluster id> for ACK's logtail-ds
    namespace: pulumi.Input[str]
    app: str  # the pods' `app` label
    logstore: str  # created in the project by the operator


class LogCollection(pulumi.ComponentResource):
    logstore: str

    def __init__(self, name: str, args: LogCollectionArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:LogCollection", name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-pipeline",
            api_version="telemetry.alibabacloud.com/v1alpha1",
            kind="ClusterAliyunPipelineConfig",
            metadata={"name": f"{args.logstore}-stdio"},  # cluster-scoped, unique in the project
            spec={
                "project": {"name": args.project},
                "logstores": [{"name": args.logstore, "ttl": RETENTION_DAYS}],
                "config": {
                    "inputs": [
                        {
                            "Type": "input_container_stdio",
                            "IgnoringStdout": False,
                            "IgnoringStderr": False,
                            "ContainerFilters": {
                                "K8sNamespaceRegex": pulumi.Output.concat("^", args.namespace, "$"),
                                "IncludeK8sLabel": {"app": args.app},
                            },
                        }
                    ],
                    "flushers": [{"Type": "flusher_sls", "Logstore": args.logstore}],
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.logstore = args.logstore
        self.register_outputs({"logstore": args.logstore})
