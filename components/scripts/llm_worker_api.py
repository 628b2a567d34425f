"""What the short-lived ECS workers share: the metadata service, an Alibaba Cloud API call with the instance's RAM
role, and stopping themselves (StopCharging) when their work is done.

Imported by llm-model-import (the model import workers) and llm-image-mirror (the image mirror worker), which are
written beside it into /usr/local/bin by their user-data: a script's own directory is the first entry of its
sys.path. aliyunsdkcore comes from the worker's LIB directory, which each script puts on its path before a call.
"""

# pyright: reportMissingImports=false
# (aliyunsdkcore is installed on the worker, not in the test environment)
from __future__ import annotations

import urllib.request
from collections.abc import Mapping

METADATA = "http://100.100.100.200/latest/meta-data"


def metadata(path: str) -> str:
    with urllib.request.urlopen(f"{METADATA}/{path}", timeout=10) as response:
        return response.read().decode().strip()


def call(region: str, domain: str, version: str, action: str, params: Mapping[str, str]) -> bytes:
    """One RPC-style API call (POST) with the temporary credentials of the instance's RAM role."""
    from aliyunsdkcore.auth.credentials import EcsRamRoleCredential
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    client = AcsClient(region_id=region, credential=EcsRamRoleCredential(metadata("ram/security-credentials/")))
    request = CommonRequest(domain=domain, version=version, action_name=action)
    request.set_method("POST")
    for key, value in params.items():
        request.add_query_param(key, value)
    return client.do_action_with_exception(request)


def stop_self(region: str) -> int:
    """StopInstance on this instance in economical mode (StoppedMode=StopCharging), with its own role."""
    params = {"InstanceId": metadata("instance-id"), "StoppedMode": "StopCharging"}
    call(region, f"ecs.{region}.aliyuncs.com", "2014-05-26", "StopInstance", params)
    return 0
