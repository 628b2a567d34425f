"""The ECS worker scripts (components/scripts/llm-model-import.py, llm-image-mirror.py) loaded for tests, and a
stand-in for aliyunsdkcore, which the workers install and this environment does not have."""

from __future__ import annotations

import importlib.util
import sys
import types

from components.shipped_scripts import SCRIPTS


def load(filename: str, module_name: str) -> types.ModuleType:
    """A worker script as a module; its shared llm_worker_api is found beside it, as on the worker."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(module_name, SCRIPTS / filename)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_api(monkeypatch, metadata: dict[str, str], answer: bytes = b"{}") -> tuple[dict, list[str]]:
    """Replace aliyunsdkcore and the metadata service for llm_worker_api; returns what the one call sent (domain,
    version, action, params, method, region, role, done) and the metadata paths asked for. `metadata`: path ->
    answer."""
    import llm_worker_api

    sent: dict = {}
    asked: list[str] = []

    class Request:
        def __init__(self, domain, version, action_name):
            sent.update(domain=domain, version=version, action=action_name, params={})

        def set_method(self, method):
            sent["method"] = method

        def add_query_param(self, key, value):
            sent["params"][key] = value

    class Client:
        def __init__(self, region_id, credential):
            sent.update(region=region_id, role=credential.role_name)

        def do_action_with_exception(self, request):
            sent["done"] = True
            return answer

    class Credential:
        def __init__(self, role_name):
            self.role_name = role_name

    fakes = {
        "aliyunsdkcore": types.ModuleType("aliyunsdkcore"),
        "aliyunsdkcore.client": types.SimpleNamespace(AcsClient=Client),
        "aliyunsdkcore.request": types.SimpleNamespace(CommonRequest=Request),
        "aliyunsdkcore.auth": types.ModuleType("aliyunsdkcore.auth"),
        "aliyunsdkcore.auth.credentials": types.SimpleNamespace(EcsRamRoleCredential=Credential),
    }
    monkeypatch.setattr(sys, "modules", {**sys.modules, **fakes})
    monkeypatch.setattr(llm_worker_api, "metadata", lambda path: asked.append(path) or metadata[path])
    return sent, asked
