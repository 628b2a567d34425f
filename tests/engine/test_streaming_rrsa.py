"""Streaming from OSS on Alibaba Cloud (acs, ack; docs/loading.md), run for real as far as it can run here: the ack
stack's engine container as the program builds it for modelStore.load stream (export_stacks.VARIANTS
"ack-stream-oss": its argv, its environment, its AWS config file and credential process from the ConfigMap), with
vLLM 0.32.0's Run:ai Model Streamer reading an S3 API served by moto with authentication on.

No AWS key is in the engine's environment. The only credentials come from the AWS config file's `credential_process`,
the program's components/scripts/rrsa-credential-process.py, which sends a projected-token stand-in to a fake
Alibaba STS (AssumeRoleWithOIDC, in the response shape Alibaba documents) that answers with temporary credentials
moto issued for a role allowed to read the bucket: an access key id, its secret and a session token. moto refuses
any request not signed with them, and a temporary key whose x-amz-security-token header is missing or wrong
(moto/iam/access_control.py AssumedRoleAccessKey), as OSS wants STS tokens in that header. So the run passes only if
boto3 (the listing and the small files) and the AWS SDK for C++ in libstreamers3.so (the safetensors) both take
credentials from credential_process, with the token.

The ecs host's engine (export_stacks.VARIANTS "ecs-stream-oss", ecs.weights.load stream) runs the same way, with the
credential process's ecs-ram-role source against a fake ECS metadata server in security hardening mode (no answer
without the token from PUT /latest/api/token) that serves moto's credentials in the shape Alibaba's credential SDK
reads (Code Success, AccessKeyId, AccessKeySecret, SecurityToken, Expiration).

What this does not show: that Alibaba's real STS accepts the pod's RRSA token, that the real metadata server answers
so, and that OSS accepts the streamer's
requests (SigV4 for the region id, virtual-hosted style, which loopback cannot serve: path style here). Those stay
unverified (docs/loading.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import gateway_check as check
import pytest
import substitutions as subs
from alibaba_fakes import (
    CREDENTIALS_PATH,
    FakeMetadata,
    FakeSts,
    imported_objects,
    in_an_hour,
    role_credentials,
    sts_success,
)
from conftest import exported_variants, free_port, stop, wait_for

from core.engine import STREAM_TIME_LOG_LINE, STREAMER_LOG_LINE

VARIANT = "ack-stream-oss"
BUCKET = "llm-models"
ROLE = "streamer"
# moto's own identity before authentication is switched on (any key works then; these are not credentials). The
# region is the stack's (AWS_REGION, e.g. cn-hangzhou): moto keeps IAM and STS per partition, and takes a cn-* region
# for the aws-cn partition, so the role and its credentials are made where the engine's signed requests look.
SETUP = {"aws_access_key_id": "moto-setup", "aws_secret_access_key": "moto-setup"}
READ_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:{p}:s3:::{BUCKET}{o}" for p in ("aws", "aws-cn") for o in ("", "/*")],
        }
    ],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.FAKE-TEST-ONLY-projected-token.FAKE-TEST-ONLY-signature"
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN")


def variant() -> dict:
    return exported_variants()[VARIANT]


ECS_VARIANT = "ecs-stream-oss"


def ecs_variant() -> dict:
    return exported_variants()[ECS_VARIANT]


def clean_env() -> dict[str, str]:
    """This process's environment without any AWS credential or config variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNAI_STREAMER_", "ALIBABA_CLOUD_"))}


def region() -> str:
    return {e["name"]: e.get("value") for e in variant()["engine"]["env"]}["AWS_REGION"]


def client(service: str, endpoint: str, **keys):
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region(),
        config=Config(s3={"addressing_style": "path"}),
        **(keys or SETUP),
    )


@pytest.fixture(scope="module")
def moto(model_dir, workdir):
    """moto in its own process, its bucket holding the tiny model where the ack stack streams from, a role allowed to
    read it and that role's temporary credentials; then authentication on for every request."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = workdir / "moto-auth.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=clean_env(),
        start_new_session=True,
    )
    try:
        wait_for(f"{endpoint}/moto-api/", 60, server, log)
        iam, s3, sts = (client(s, endpoint) for s in ("iam", "s3", "sts"))
        role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
        iam.put_role_policy(RoleName=ROLE, PolicyName="read-models", PolicyDocument=json.dumps(READ_POLICY))
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region()})
        uri = {e["name"]: e.get("value") for e in variant()["engine"]["env"]}["LLM_MODEL_URI"]
        prefix = uri.split("/", 3)[3]  # s3://<bucket>/<models/<id>>
        # The ecs host's model argument is its s3:// URI itself (its bucket is configured, not generated).
        ecs_prefix = ecs_variant()["engine"]["command"][2].split("/", 3)[3]
        files = {path.name: path.read_bytes() for path in Path(model_dir).iterdir()}
        for key_prefix in {prefix, ecs_prefix}:
            # As the import workers leave it: the weights and, beside them, the workers' manifests
            # (.llm-import/worker-I-of-N.json), which the streamer must pass over.
            model_id = key_prefix.split("/", 1)[1]
            for key, data in imported_objects(key_prefix, files, model_id, "master", workers=2).items():
                s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="llm", DurationSeconds=3600)["Credentials"]
        # From here on moto authenticates and authorizes every request (moto-api reset-auth: 0 requests unchecked).
        # (text/plain: a form body would be parsed away before moto reads request.data)
        reset = f"{endpoint}/moto-api/reset-auth"
        urllib.request.urlopen(
            urllib.request.Request(reset, data=b"0", method="POST", headers={"Content-Type": "text/plain"})
        )
        yield endpoint, f"s3://{BUCKET}/{prefix}", credentials, log
    finally:
        stop(server)


def files_here(export: dict, root: Path) -> dict[str, Path]:
    """The ConfigMap files the engine container mounts, written under `root` (the credential process's path in the
    config file moved with them)."""
    written = {}
    for pod_path in export["engine_files"]:
        local = root / pod_path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        written[pod_path] = local
    for pod_path, local in written.items():
        text = export["engine_files"][pod_path]
        for other, moved in written.items():
            text = text.replace(other, str(moved))
        local.write_text(text)
    return written


def engine_env(export: dict, endpoint: str, sts_url: str, root: Path) -> dict[str, str]:
    """The stack's engine environment, with only its addresses moved to loopback."""
    env = subs.stack_env(export["engine"], export["secrets"])
    assert not set(AWS_KEYS) & set(env), "the stack must give the engine no AWS key"
    written = files_here(export, root)
    token = root / "rrsa-token"
    token.write_text(OIDC_TOKEN)
    assert env["AWS_CONFIG_FILE"] in written and env["AWS_ENDPOINT_URL"].startswith("https://s3.oss-")
    return {
        **env,
        "AWS_CONFIG_FILE": str(written[env["AWS_CONFIG_FILE"]]),
        "AWS_ENDPOINT_URL": endpoint,
        # Loopback serves no virtual-hosted bucket names; OSS needs the stack's "1".
        "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "0",
        "ALIBABA_CLOUD_STS_ENDPOINT": sts_url,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token),
        # Nothing else may supply credentials: no shared credentials file, no ~/.aws.
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-credentials"),
        "HOME": str(root),
    }


def serve_streamed(log: Path, export: dict, uri: str, env: dict[str, str]) -> str:
    """Start the stack's engine argv on `uri` with `env` (and nothing else of ours), ask for a completion, stop
    it; the engine's log."""
    port = free_port()
    venv_bin = Path(sys.executable).parent
    process = subprocess.Popen(
        [str(venv_bin / "vllm"), *subs.stack_engine_argv(export["engine"], uri, port)[1:]],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**clean_env(), **env, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"},
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 300, process, log)
        status, body, _ = check.request(
            "POST",
            f"http://127.0.0.1:{port}/v1/completions",
            env["VLLM_API_KEY"],
            {"model": export["outputs"]["servedModelName"], "prompt": "Let", "max_tokens": 8},
        )
        assert status == 200, body[:300]
        assert "Hello world" in body.decode()
    finally:
        stop(process)
    return log.read_text()


def test_the_ack_stack_streams_from_s3_with_the_credential_process_only(moto, workdir):
    endpoint, uri, credentials, moto_log = moto
    export = variant()
    argv = export["engine"]["command"]
    assert argv[2] == "$(LLM_MODEL_URI)" and argv[argv.index("--load-format") + 1] == "runai_streamer"
    answer = sts_success(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"], in_an_hour(), "x"
    )
    sts = FakeSts(
        lambda request: (
            (200, answer)
            if request["form"].get("OIDCToken") == OIDC_TOKEN and request["query"].get("Action") == "AssumeRoleWithOIDC"
            else (401, {"RequestId": "FAKE", "Code": "AuthenticationFail.OIDCToken.Invalid", "Message": "bad token"})
        )
    )
    root = workdir / "stream-rrsa"
    env = engine_env(export, endpoint, sts.url, root)
    # moto refuses a request without the session token, and one without credentials at all.
    import botocore.exceptions

    keys = {"aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"]}
    for denied in (client("s3", endpoint, **keys), client("s3", endpoint)):
        with pytest.raises(botocore.exceptions.ClientError):
            denied.list_objects_v2(Bucket=BUCKET, Prefix=uri.split("/", 3)[3])
    try:
        text = serve_streamed(workdir / "stream-rrsa-engine.log", export, uri, env)
    finally:
        sts.server.shutdown()
    assert f"{STREAMER_LOG_LINE}: 100%" in text
    assert STREAM_TIME_LOG_LINE in text  # the stack's env lets the streamer log its time and rate
    assert sts.requests, "the credential process never called STS"
    call = sts.requests[0]
    assert call["form"]["RoleArn"] == env["ALIBABA_CLOUD_ROLE_ARN"]
    assert call["form"]["OIDCProviderArn"] == env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"]
    requests = moto_log.read_text().splitlines()
    shard = [line for line in requests if "model.safetensors" in line and "GET" in line]
    assert shard and all('" 206 ' in line for line in shard), shard[:3]  # the C++ client's ranged reads, signed
    assert any("list-type=2" in line and '" 200 ' in line for line in requests)  # boto3's listing, signed
    assert not any('" 403 ' in line for line in requests if "model.safetensors" in line)


ECS_ROLE = "llm-dev-host-1a2b3c4d"


def test_the_ecs_host_streams_from_s3_with_the_instance_role_only(moto, workdir):
    endpoint, _, credentials, moto_log = moto
    export = ecs_variant()
    argv = export["engine"]["command"]
    assert argv[2].startswith("s3://my-llm-models/models/")
    assert argv[argv.index("--load-format") + 1] == "runai_streamer"
    uri = f"s3://{BUCKET}/{argv[2].split('/', 3)[3]}"  # moto's bucket, the stack's prefix
    keys = (credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"], in_an_hour())
    metadata = FakeMetadata({ECS_ROLE: (200, role_credentials(*keys))}, hardened=True)
    root = workdir / "stream-ecs"
    env = subs.stack_env(export["engine"], export["secrets"])
    assert not set(AWS_KEYS) & set(env), "the stack must give the engine no AWS key"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true" and env["AWS_ENDPOINT_URL"].startswith("https://s3.oss-")
    written = files_here(export, root)
    env = {
        **env,
        "AWS_CONFIG_FILE": str(written[env["AWS_CONFIG_FILE"]]),
        "AWS_ENDPOINT_URL": endpoint,
        "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "0",  # loopback serves no virtual-hosted names
        "LLM_ECS_METADATA_ENDPOINT": metadata.url,
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-credentials"),
        "HOME": str(root),
    }
    try:
        text = serve_streamed(workdir / "stream-ecs-engine.log", export, uri, env)
    finally:
        metadata.server.shutdown()
    assert f"{STREAMER_LOG_LINE}: 100%" in text
    assert STREAM_TIME_LOG_LINE in text  # the stack's env lets the streamer log its time and rate
    # The credential process took a token first and read the role with it, never without.
    calls = [(method, path, metadata.tokened((method, path, headers))) for method, path, headers in metadata.requests]
    assert ("PUT", "/latest/api/token", False) in calls
    assert ("GET", f"{CREDENTIALS_PATH}{ECS_ROLE}", True) in calls
    assert not [c for c in calls if c[0] == "GET" and not c[2]]
    requests = moto_log.read_text().splitlines()
    prefix = uri.split("/", 3)[3]
    shard = [line for line in requests if f"{prefix}/model.safetensors" in line and "GET" in line]
    assert shard and all('" 206 ' in line for line in shard), shard[:3]  # the C++ client's ranged reads, signed
    # (moto's log is shared with the ack test, whose refused listings of the same prefix are deliberate)
    assert not any('" 403 ' in line for line in requests if f"{prefix}/model.safetensors" in line)
