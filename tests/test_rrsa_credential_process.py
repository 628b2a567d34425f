"""The streamer's credential process on Alibaba Cloud (components/scripts/rrsa-credential-process.py), run as the AWS
SDKs run it (a subprocess, its standard output read as JSON) against a fake STS on loopback that answers in the shape
Alibaba documents for AssumeRoleWithOIDC (Credentials {AccessKeyId, AccessKeySecret, SecurityToken, Expiration},
AssumedRoleUser, OIDCTokenInfo, RequestId; errors: HTTP 4xx with Code, Message, RequestId, HostId, Recommend).
The real STS is not called here: what it accepts is only what its API page says."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibaba_fakes import METADATA_TOKEN, FakeMetadata, FakeSts, role_credentials, sts_success

SCRIPT = Path(__file__).resolve().parents[1] / "components" / "scripts" / "rrsa-credential-process.py"
ROLE = "acs:ram::1234567890123456:role/llm-models-stream"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.FAKE-TEST-ONLY-oidc-token-payload.FAKE-TEST-ONLY-signature"
STS_KEY_ID = "STS.FAKE-TEST-ONLY-key-id"
STS_SECRET = "FAKE-TEST-ONLY-access-key-secret"
STS_TOKEN = "CAISFAKE-TEST-ONLY-security-token"
EXPIRATION = "2026-12-01T20:00:00Z"


# What the AWS SDKs read from a credential process (Version 1), from either source.
PROCESS_CREDENTIALS = {
    "Version": 1,
    "AccessKeyId": STS_KEY_ID,
    "SecretAccessKey": STS_SECRET,
    "SessionToken": STS_TOKEN,
    "Expiration": EXPIRATION,
}


def success_body() -> dict:
    return sts_success(STS_KEY_ID, STS_SECRET, STS_TOKEN, EXPIRATION, ROLE)


EXPIRED = (
    401,
    {
        "RequestId": "7AD4B3B8-FAKE",
        "HostId": "sts.aliyuncs.com",
        "Code": "AuthenticationFail.OIDCToken.Expired",
        "Message": "This JsonWebToken is expired.",
        "Recommend": "https://api.aliyun.com/troubleshoot?q=AuthenticationFail.OIDCToken.Expired",
    },
)


@pytest.fixture
def sts() -> Iterator[FakeSts]:
    fake = FakeSts(lambda request: (200, success_body()))
    yield fake
    fake.server.shutdown()


@pytest.fixture
def env(tmp_path, sts) -> dict[str, str]:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token),
        "ALIBABA_CLOUD_STS_ENDPOINT": sts.url,
        "PATH": "/usr/bin:/bin",
    }


def run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def module():
    spec = importlib.util.spec_from_file_location("rrsa_credential_process", SCRIPT)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def secrets_in(text: str) -> list[str]:
    return [s for s in (TOKEN, STS_SECRET, STS_TOKEN) if s in text]


def test_it_prints_the_aws_process_credentials_from_sts_answer(env, sts):
    done = run(env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == PROCESS_CREDENTIALS
    assert done.stderr == ""


def test_the_call_is_an_unsigned_assume_role_with_oidc_carrying_the_token_from_the_file(env, sts):
    assert run(env).returncode == 0
    (sent,) = sts.requests
    assert sent["path"] == "/"
    assert {k: sent["query"][k] for k in ("Action", "Format", "Version")} == {
        "Action": "AssumeRoleWithOIDC",
        "Format": "JSON",
        "Version": "2015-04-01",
    }
    assert sent["form"] == {
        "RoleArn": ROLE,
        "OIDCProviderArn": PROVIDER,
        "OIDCToken": TOKEN,  # the file's content, without the trailing newline
        "RoleSessionName": "llm-model-streamer",
        "DurationSeconds": "3600",
    }
    # No AccessKey and no signature: the token is the only proof; and the token is never in the URL.
    everything = json.dumps(sent)
    assert "AccessKeyId" not in everything and "Signature" not in sent["query"]
    assert TOKEN not in json.dumps(sent["query"])


def test_sts_refusing_the_token_is_one_line_on_stderr_with_its_code_and_no_secret(env, sts):
    sts.answers.append(EXPIRED)
    done = run(env)
    assert done.returncode == 1 and done.stdout == ""
    assert "AuthenticationFail.OIDCToken.Expired" in done.stderr and "HTTP 401" in done.stderr
    assert "7AD4B3B8-FAKE" in done.stderr  # the RequestId, for Alibaba's support
    assert len(done.stderr.strip().splitlines()) == 1
    assert secrets_in(done.stderr + done.stdout) == []
    assert len(sts.requests) == 1  # a 4xx is final: not retried


def test_a_server_error_is_retried_and_a_body_without_credentials_is_refused(env, sts):
    sts.answers.append((503, b"<html>busy</html>"))
    done = run(env)
    assert done.returncode == 0, done.stderr
    assert len(sts.requests) == 2
    sts.answers.append((200, {"RequestId": "x", "AssumedRoleUser": {}}))
    refused = run(env)
    assert refused.returncode == 1 and "without Credentials" in refused.stderr
    assert "busy" not in done.stderr + refused.stderr  # a non-STS body is never echoed


def test_every_configuration_mistake_names_the_variable_and_leaks_nothing(env, tmp_path):
    for name in ("ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"):
        done = run({k: v for k, v in env.items() if k != name})
        assert done.returncode == 1 and name in done.stderr and done.stdout == ""
    assert "not an ARN" in run({**env, "ALIBABA_CLOUD_ROLE_ARN": "arn:aws:iam::1:role/x"}).stderr
    missing = run({**env, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(tmp_path / "absent")})
    assert "cannot read the OIDC token file" in missing.stderr
    plain = run({**env, "ALIBABA_CLOUD_STS_ENDPOINT": "http://sts.cn-hangzhou.aliyuncs.com"})
    assert plain.returncode == 1 and "plain http is refused" in plain.stderr
    unreachable = module()
    with pytest.raises(unreachable.Failure, match="cannot reach STS"):
        unreachable.call(unreachable.urllib.request.Request("http://127.0.0.1:9/", data=b"", method="POST"), 1)


def test_a_bare_host_means_https_on_that_host():
    script = module()
    assert script.endpoint_url({"ALIBABA_CLOUD_STS_ENDPOINT": "sts-vpc.cn-hangzhou.aliyuncs.com"}) == (
        "https://sts-vpc.cn-hangzhou.aliyuncs.com/"
    )
    with pytest.raises(script.Failure):
        script.endpoint_url({"ALIBABA_CLOUD_STS_ENDPOINT": "https://user:pw@sts.aliyuncs.com"})


def test_the_script_needs_only_the_standard_library():
    imported = {
        line.split()[1].split(".")[0]
        for line in SCRIPT.read_text().splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


# --- Source ecs-ram-role: the ECS metadata server (the ecs target's engine container) -----------------------------
ECS_ROLE = "llm-dev-host-1a2b3c4d"


def role_body(**changes) -> dict:
    """What the metadata server answers for a role (Alibaba's credential SDKs read Code, AccessKeyId,
    AccessKeySecret, SecurityToken, Expiration; LastUpdated is there too)."""
    return {**role_credentials(STS_KEY_ID, STS_SECRET, STS_TOKEN, EXPIRATION), **changes}


@pytest.fixture
def metadata() -> Iterator[FakeMetadata]:
    fake = FakeMetadata({ECS_ROLE: (200, role_body())})
    yield fake
    fake.server.shutdown()


def run_ecs(metadata: FakeMetadata, **env: str) -> subprocess.CompletedProcess:
    base = {"LLM_ECS_METADATA_ENDPOINT": metadata.url, "PATH": "/usr/bin:/bin", **env}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--source", "ecs-ram-role"], env=base, capture_output=True, text=True, timeout=60
    )


def test_the_ecs_source_prints_the_instance_roles_credentials_read_with_a_metadata_token(metadata):
    metadata.hardened = True  # security hardening mode: nothing is served without the token
    done = run_ecs(metadata)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == PROCESS_CREDENTIALS
    assert done.stderr == ""
    put, *gets = metadata.requests
    assert put[:2] == ("PUT", "/latest/api/token") and put[2]["x-aliyun-ecs-metadata-token-ttl-seconds"] == "21600"
    # The role's name is listed first, then its credentials read; every read carries the token.
    assert [g[1] for g in gets] == [
        "/latest/meta-data/ram/security-credentials/",
        f"/latest/meta-data/ram/security-credentials/{ECS_ROLE}",
    ]
    assert all(g[2].get("x-aliyun-ecs-metadata-token") == METADATA_TOKEN for g in gets)


def test_without_a_token_service_it_reads_without_one_unless_imdsv1_is_disabled(metadata):
    metadata.token_status = 404  # a server that has no token endpoint: the SDKs' fallback
    done = run_ecs(metadata, ALIBABA_CLOUD_ECS_METADATA=ECS_ROLE)
    assert done.returncode == 0, done.stderr
    gets = [r for r in metadata.requests if r[0] == "GET"]
    assert [g[1] for g in gets] == [f"/latest/meta-data/ram/security-credentials/{ECS_ROLE}"]  # the role was named
    assert "x-aliyun-ecs-metadata-token" not in gets[0][2]
    refused = run_ecs(metadata, ALIBABA_CLOUD_IMDSV1_DISABLED="true")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "no metadata token" in refused.stderr and "HTTP 404" in refused.stderr


def test_the_ecs_sources_errors_are_one_line_name_the_fix_and_leak_nothing(metadata):
    metadata.roles = {}
    none = run_ecs(metadata)
    assert none.returncode == 1 and "no RAM role attached" in none.stderr
    wrong = run_ecs(metadata, ALIBABA_CLOUD_ECS_METADATA="other-role")
    assert "HTTP 404" in wrong.stderr and "is RAM role other-role attached" in wrong.stderr
    assert "Not Found" not in wrong.stderr  # the server's body is never echoed
    metadata.roles = {ECS_ROLE: (200, role_body(Code="Failed"))}
    failed = run_ecs(metadata)
    assert "Code 'Failed', not 'Success'" in failed.stderr
    metadata.roles = {ECS_ROLE: (200, role_body(Expiration="tomorrow"))}
    assert "Expiration not in ISO 8601" in run_ecs(metadata).stderr
    metadata.roles = {ECS_ROLE: (200, role_body(SecurityToken=None))}
    assert "without Credentials" in run_ecs(metadata).stderr
    for done in (none, wrong, failed):
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
        assert done.stderr.startswith("rrsa-credential-process (ecs-ram-role): ")
        assert secrets_in(done.stderr) == [] and METADATA_TOKEN not in done.stderr
    remote = run_ecs(metadata, LLM_ECS_METADATA_ENDPOINT="http://100.100.100.201")
    assert remote.returncode == 1 and "loopback" in remote.stderr


def test_the_metadata_server_defaults_to_its_link_local_address_and_an_unknown_source_is_refused(metadata):
    script = module()
    assert script.metadata_url({}) == "http://100.100.100.200"
    with pytest.raises(script.Failure, match="cannot reach the ECS metadata server"):
        script._metadata("http://127.0.0.1:9/latest/meta-data/", {}, attempts=1)
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--source", "imds"], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "usage" in bad.stderr and bad.stdout == ""
