"""The serving pods' stdout and stderr into an SLS logstore, through ACK's logtail-ds add-on.

logtail-ds (installed with the cluster) creates the cluster's SLS project and watches AliyunLogConfig
resources; this one creates the logstore and collects the containers of pods labelled `app`.
Unverified offline: the AliyunLogConfig field names (log.alibabacloud.com/v1alpha1, the
`service_docker_stdout` plugin and its IncludeK8sLabel filter) follow ACK's "collect container logs
with CRDs" documentation as remembered, not checked against a live cluster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

RETENTION_DAYS = 30


@dataclass(frozen=True)
class LogCollectionArgs:
    namespace: pulumi.Input[str]
    app: str  # the pods' `app` label
    logstore: str  # SLS logstore name, created in the cluster's log project


class LogCollection(pulumi.ComponentResource):
    logstore: str

    def __init__(self, name: str, args: LogCollectionArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:index:LogCollection", name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-config", api_version="log.alibabacloud.com/v1alpha1", kind="AliyunLogConfig",
            metadata={"name": f"{args.app}-stdout", "namespace": args.namespace},
            spec={"logstore": args.logstore, "lifeCycle": RETENTION_DAYS,
                  "logtailConfig": {"inputType": "plugin", "configName": f"{args.app}-stdout",
                                    "inputDetail": {"plugin": {"inputs": [{
                                        "type": "service_docker_stdout",
                                        "detail": {"Stdout": True, "Stderr": True,
                                                   "IncludeK8sLabel": {"app": args.app}}}]}}}},
            opts=pulumi.ResourceOptions(parent=self))
        self.logstore = args.logstore
        self.register_outputs({"logstore": args.logstore})
