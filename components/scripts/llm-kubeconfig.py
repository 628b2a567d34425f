#!/usr/bin/python3
"""Writes root's kubeconfig for the cluster in /etc/llm-jump/cluster.env, fetched with the jump host's own
RAM role: DescribeClusterUserKubeconfig (GET /k8s/{ClusterId}/user_config, RAM action
cs:DescribeClusterUserKubeconfig) with PrivateIpAddress=true, so kubectl uses the cluster's internal
endpoint. The credential is the role's (cs.KubernetesPermission grants it RBAC) and lasts VALID_MINUTES
(15-4320); llm-kubeconfig.timer runs this daily. The role's credentials come from the metadata service
(alibabacloud_credentials, type ecs_ram_role)."""

# pyright: reportMissingImports=false
# (the SDK is installed on the jump host, not in the test environment)
import os
import sys
import tempfile

sys.path.insert(0, "/opt/llm-jump/lib")

from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_cs20151215 import models
from alibabacloud_cs20151215.client import Client
from alibabacloud_tea_openapi import models as openapi

CONFIG = "/root/.kube/config"


def settings(path: str = "/etc/llm-jump/cluster.env") -> dict:
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def main() -> None:
    env = settings()
    region = env["REGION"]
    credential = CredentialClient(CredentialConfig(type="ecs_ram_role", role_name=env["ROLE_NAME"]))
    client = Client(openapi.Config(credential=credential, region_id=region, endpoint=f"cs.{region}.aliyuncs.com"))
    request = models.DescribeClusterUserKubeconfigRequest(
        private_ip_address=True, temporary_duration_minutes=int(env["VALID_MINUTES"])
    )
    text = client.describe_cluster_user_kubeconfig(env["CLUSTER_ID"], request).body.config
    if not text or "clusters:" not in text:
        sys.exit("DescribeClusterUserKubeconfig returned no kubeconfig")
    os.makedirs(os.path.dirname(CONFIG), mode=0o700, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=os.path.dirname(CONFIG))
    with os.fdopen(fd, "w") as f:  # mkstemp: mode 0600
        f.write(text)
    os.replace(path, CONFIG)
    print(f"kubeconfig for {env['CLUSTER_ID']} written to {CONFIG}")


if __name__ == "__main__":
    main()
