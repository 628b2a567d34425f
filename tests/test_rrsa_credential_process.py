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
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "components" / "scripts" / "rrsa-credential-process.py"
ROLE = "acs:ram::1234567890123456:role/llm-models-stream"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.FAKE-TEST-ONLY-oidc-token-payload.FAKE-TEST-ONLY-signature"
STS_KEY_ID = "STS.FAKE-TEST-ONLY-key-id"
STS_SECRET = "FAKE-TEST-ONLY-access-key-secret"
STS_TOKEN = "CAISFAKE-TEST-ONLY-security-token"
EXPIRATION = "2026-12-01T20:00:00Z"


def success_body() -> dict:
    return {
        "RequestId": "3D57EAD2-8723-1F26-B69C-F8707D8B565D",
        "OIDCTokenInfo": {
            "Subject": "system:serviceaccount:llm:llm-streamer",
            "Issuer": "https://oidc-ack",
            "ClientIds": "sts.aliyuncs.com",
        },
        "AssumedRoleUser": {"AssumedRoleId": "33157794895460****", "Arn": f"{ROLE}/llm-model-streamer"},
        "Credentials": {
            "SecurityToken": STS_TOKEN,
            "Expiration": EXPIRATION,
            "AccessKeySecret": STS_SECRET,
            "AccessKeyId": STS_KEY_ID,
        },
    }


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


class FakeSts:
    """Answers each POST with the next queued (status, body); records what it was sent."""

    def __init__(self):
        self.answers: list[tuple[int, object]] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                parts = urllib.parse.urlsplit(self.path)
                fake.requests.append(
                    {
                        "path": parts.path,
                        "query": dict(urllib.parse.parse_qsl(parts.query)),
                        "form": dict(urllib.parse.parse_qsl(self.rfile.read(length).decode())),
                        "headers": dict(self.headers),
                    }
                )
                status, body = fake.answers.pop(0) if fake.answers else (200, success_body())
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def sts() -> Iterator[FakeSts]:
    fake = FakeSts()
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
    assert json.loads(done.stdout) == {
        "Version": 1,
        "AccessKeyId": STS_KEY_ID,
        "SecretAccessKey": STS_SECRET,
        "SessionToken": STS_TOKEN,
        "Expiration": EXPIRATION,
    }
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
