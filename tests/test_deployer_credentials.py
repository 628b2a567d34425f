"""The dynamic providers' own calls act as the alicloud provider's identity: one helper for all three."""

import json
import subprocess
import sys

from harness import ROOT

from components.alibaba import api_server_acl, deployer_credentials, multipart_cleanup, prepared_image
from core.config.settings import ProviderConfig


def test_the_three_providers_share_one_credential_helper():
    assert api_server_acl._provider().credential_client is deployer_credentials.credential_client
    assert multipart_cleanup._provider().credentials is deployer_credentials.access_key
    assert prepared_image._provider().credentials is deployer_credentials.access_key


def test_credentials_come_from_the_stack_then_the_provider_environment_then_the_default_chain(monkeypatch):
    for name in ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    pick = deployer_credentials.credential_client
    stack = pick({"accessKey": "AK", "secretKey": "SK", "securityToken": "TOK"})
    assert (stack.get_credential().access_key_id, stack.get_credential().security_token) == ("AK", "TOK")
    assert pick({"profile": "work"}).cloud_credential.provider.__class__.__name__ == "CLIProfileCredentialsProvider"
    assert pick({}).cloud_credential.type_name == "default"
    monkeypatch.setenv("ALICLOUD_ACCESS_KEY", "ENV-AK")
    monkeypatch.setenv("ALICLOUD_SECRET_KEY", "ENV-SK")
    assert pick({}).get_credential().access_key_id == "ENV-AK"
    assert deployer_credentials.access_key({}) == ("ENV-AK", "ENV-SK", None)
    assert deployer_credentials.access_key({"accessKey": "AK", "secretKey": "SK"}) == ("AK", "SK", None)  # stack first


def test_only_the_identity_keys_of_the_stacks_alicloud_config_are_passed_on():
    values = {"region": "cn-hangzhou", "accessKey": "AK", "secretKey": "SK", "profile": "", "assumeRole": {"x": 1}}
    provider = ProviderConfig(namespace="alicloud", values=values)
    assert deployer_credentials.stack_credentials(provider) == {"accessKey": "AK", "secretKey": "SK"}


def test_nothing_found_is_none(tmp_path):
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(json.dumps({"current": "gone", "profiles": []}))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    code = (
        "from components.alibaba.deployer_credentials import access_key\n"
        "print(access_key({}), access_key({'profile': 'gone'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split() == ["None", "None"]


def test_the_chains_own_logging_of_each_miss_is_held_back(monkeypatch):
    import logging

    from alibabacloud_credentials.client import Client

    logger = logging.getLogger("credentials")  # the library's, with its own handler to stderr
    records: list[str] = []
    collect = logging.Handler()
    collect.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    monkeypatch.setattr(logger, "handlers", [collect])

    def miss(self):
        logger.error("Failed to get RAM session credentials")
        raise RuntimeError("no provider in the chain has credentials")

    monkeypatch.setattr(Client, "get_credential", miss)
    for name in ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert deployer_credentials.access_key({}) is None and records == []
    logger.error("after it: logged again")
    assert records == ["after it: logged again"]
