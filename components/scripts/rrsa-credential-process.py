#!/usr/bin/env python3
"""AWS `credential_process` for the Run:ai Model Streamer on Alibaba Cloud: Alibaba temporary credentials -> AWS JSON.

Two sources, chosen by the one argument (`--source`), each with its own section below:
  rrsa (the default, acs and ack pods): the pod's RRSA token exchanged with Alibaba STS AssumeRoleWithOIDC;
  ecs-ram-role (the ecs target's engine container): the instance RAM role's credentials from the ECS metadata server.

The streamer reads OSS through OSS's S3-compatible API. Its S3 clients (boto3 for listing and the small files, the
AWS SDK for C++ in libstreamers3.so for the safetensors) take credentials from the AWS default chain, which runs the
command named by `credential_process` in the AWS config file and reads its standard output (docs.aws.amazon.com/
sdkref/latest/guide/feature-process-credentials.html, "Process credential provider"; the AWS CLI's "Sourcing
credentials with an external process": a JSON object with Version 1, AccessKeyId, SecretAccessKey, SessionToken and
Expiration in ISO 8601; nothing secret on standard error). This script is that command.

It reads what RRSA gives a pod (the environment and token file of "Use RRSA to authorize different pods to access
different cloud services", ACK and ACS docs; the same names ack-pod-identity-webhook injects):
  ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE (all required);
  ALIBABA_CLOUD_STS_ENDPOINT (host, e.g. sts-vpc.cn-hangzhou.aliyuncs.com; a URL with http:// only for loopback, as the
  tests do), ALIBABA_CLOUD_ROLE_SESSION_NAME (optional).
It calls STS AssumeRoleWithOIDC (API version 2015-04-01), which needs no AccessKey signature: the OIDC token is the
proof (alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc, "RAM authorization:
no authorization for this operation"). The request is framed as Alibaba's own credential SDKs frame it (aliyun/
credentials-go: POST, Action/Format/Version/Timestamp/SignatureNonce in the query, the role, provider, token,
session name and duration as a form body) and the answer's Credentials {AccessKeyId, AccessKeySecret, SecurityToken,
Expiration} become the AWS fields. On an error STS answers JSON with Code, Message and RequestId (its error code
list: e.g. 401 AuthenticationFail.OIDCToken.Expired).

The ecs-ram-role source reads what the ECS metadata server serves an instance with a RAM role attached (the ECS help
"Instance RAM roles": the page's exact address was not looked up here; the protocol below is read from Alibaba's own
credential SDK, aliyun/credentials-python alibabacloud_credentials/provider/ecs_ram_role.py):
  PUT http://100.100.100.200/latest/api/token with X-aliyun-ecs-metadata-token-ttl-seconds (21600) -> a token, sent as
  X-aliyun-ecs-metadata-token on the reads below; if the PUT fails the reads go without it (the SDK's fallback; the
  ecs host keeps http_tokens optional: components/alibaba/ecs_host.py), unless ALIBABA_CLOUD_IMDSV1_DISABLED=true;
  GET .../latest/meta-data/ram/security-credentials/ -> the role's name (unless ALIBABA_CLOUD_ECS_METADATA names it);
  GET .../latest/meta-data/ram/security-credentials/<role> -> {Code: Success, AccessKeyId, AccessKeySecret,
  SecurityToken, Expiration, LastUpdated}; the metadata server renews them before they expire.
The other host scripts read the same paths (components/scripts/fetch-oss.py, llm-model-import.py). Plain http is
that server's only scheme; LLM_ECS_METADATA_ENDPOINT moves it, to a loopback address only (the tests).

Standard library only (the engine image's python runs it). Errors go to standard error as one line naming what to
fix; no token or credential is ever written there. Exit status 0 only with credentials on standard output.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

NAME = "rrsa-credential-process"
STS_VERSION = "2015-04-01"
ACTION = "AssumeRoleWithOIDC"
# 900 s to the role's MaxSessionDuration, default 3600 (AssumeRoleWithOIDC, DurationSeconds). The SDKs ask again once
# the Expiration is near, so one hour is plenty.
DURATION_SECONDS = 3600
DEFAULT_SESSION_NAME = "llm-model-streamer"
# RoleSessionName: 2-64 characters of letters, digits, '.', '@', '-' and '_' (AssumeRoleWithOIDC, RoleSessionName).
SESSION_NAME = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
# OIDCToken: 4 to 20,000 characters (AssumeRoleWithOIDC, OIDCToken).
TOKEN_CHARS = (4, 20000)
ARN = {
    "ALIBABA_CLOUD_ROLE_ARN": re.compile(r"acs:ram::\d+:role/[A-Za-z0-9._-]{1,64}"),
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": re.compile(r"acs:ram::\d+:oidc-provider/[A-Za-z0-9._-]{1,128}"),
}
EXPIRATION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TIMEOUT_SECONDS = 10
ATTEMPTS = 3  # connection errors and 5xx are retried; a 4xx answer is final
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Failure(Exception):
    """What went wrong, for standard error: never a token or a credential."""


# --- Source rrsa: the pod's RRSA token -> STS AssumeRoleWithOIDC ------------------------------------------------


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise Failure(
            f"{name} is not set: the pod needs the RRSA environment (role ARN, OIDC provider ARN, token file)"
        )
    pattern = ARN.get(name)
    if pattern is not None and not pattern.fullmatch(value):
        raise Failure(f"{name} is not an ARN of the expected form ({pattern.pattern})")
    return value


def endpoint_url(env: dict[str, str]) -> str:
    """https://<ALIBABA_CLOUD_STS_ENDPOINT>/; plain http only to a loopback address (a local test server)."""
    raw = env.get("ALIBABA_CLOUD_STS_ENDPOINT", "").strip()
    if not raw:
        raise Failure(
            "ALIBABA_CLOUD_STS_ENDPOINT is not set: the region's STS endpoint, e.g. sts-vpc.<region>.aliyuncs.com"
        )
    url = raw if "://" in raw else f"https://{raw}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise Failure("ALIBABA_CLOUD_STS_ENDPOINT must be a host name (or an https:// URL without credentials)")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise Failure("ALIBABA_CLOUD_STS_ENDPOINT: plain http is refused (the OIDC token would travel unencrypted)")
    return f"{parts.scheme}://{parts.netloc}/"


def read_token(path: str) -> str:
    """The projected service account token: read at every call, as the RRSA docs ask (the kubelet renews it)."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as error:
        raise Failure(f"cannot read the OIDC token file {path}: {error.strerror}") from None
    if not TOKEN_CHARS[0] <= len(token) <= TOKEN_CHARS[1]:
        raise Failure(
            f"the OIDC token in {path} has {len(token)} characters; STS takes {TOKEN_CHARS[0]}-{TOKEN_CHARS[1]}"
        )
    return token


def request(env: dict[str, str], now: datetime.datetime) -> urllib.request.Request:
    """The AssumeRoleWithOIDC call, unsigned (the OIDC token is the proof)."""
    session = env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME", "").strip() or DEFAULT_SESSION_NAME
    if not SESSION_NAME.fullmatch(session):
        raise Failure("ALIBABA_CLOUD_ROLE_SESSION_NAME must be 2-64 letters, digits, '.', '@', '-' or '_'")
    query = {
        "Action": ACTION,
        "Format": "JSON",
        "Version": STS_VERSION,
        "Timestamp": now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SignatureNonce": uuid.uuid4().hex,
    }
    body = {
        "RoleArn": _required(env, "ALIBABA_CLOUD_ROLE_ARN"),
        "OIDCProviderArn": _required(env, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
        "OIDCToken": read_token(_required(env, "ALIBABA_CLOUD_OIDC_TOKEN_FILE")),
        "RoleSessionName": session,
        "DurationSeconds": str(DURATION_SECONDS),
    }
    return urllib.request.Request(
        endpoint_url(env) + "?" + urllib.parse.urlencode(query),
        data=urllib.parse.urlencode(body).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )


def _sts_error(status: int, body: bytes) -> Failure:
    """STS's error answer (Code, Message, RequestId) as one line; any other body is not echoed."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("Code"):
        detail = (
            f"{answer.get('Code')}: {str(answer.get('Message', ''))[:300]} (RequestId {answer.get('RequestId', '?')})"
        )
    else:
        detail = "no STS error body"
    return Failure(f"STS {ACTION} refused with HTTP {status}, {detail}")


def call(req: urllib.request.Request, attempts: int = ATTEMPTS) -> bytes:
    last = "no attempt"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as answer:
                return answer.read()
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise _sts_error(error.code, error.read()) from None
            last = str(_sts_error(error.code, error.read()))
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            last = f"cannot reach STS at {urllib.parse.urlsplit(req.full_url).netloc}: {reason}"
        if attempt + 1 < attempts:
            time.sleep(2**attempt)
    raise Failure(f"{last} (after {attempts} attempts)")


def aws_credentials(body: bytes) -> dict[str, object]:
    """The AWS process-credential object from STS's answer."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise Failure(f"STS {ACTION} answered HTTP 200 with a body that is not JSON") from None
    credentials = answer.get("Credentials") if isinstance(answer, dict) else None
    return _aws(credentials, f"STS {ACTION} answered")


CREDENTIAL_FIELDS = ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")


def _aws(credentials: object, who: str) -> dict[str, object]:
    """Alibaba's temporary credentials {AccessKeyId, AccessKeySecret, SecurityToken, Expiration} as AWS's fields."""
    if not isinstance(credentials, dict) or not all(isinstance(credentials.get(f), str) for f in CREDENTIAL_FIELDS):
        raise Failure(f"{who} without Credentials {{{', '.join(CREDENTIAL_FIELDS)}}}")
    if not EXPIRATION.fullmatch(credentials["Expiration"]):
        raise Failure(f"{who} an Expiration not in ISO 8601 UTC (YYYY-MM-DDThh:mm:ssZ)")
    return {
        "Version": 1,
        "AccessKeyId": credentials["AccessKeyId"],
        "SecretAccessKey": credentials["AccessKeySecret"],
        "SessionToken": credentials["SecurityToken"],
        "Expiration": credentials["Expiration"],
    }


def rrsa(env: dict[str, str]) -> dict[str, object]:
    return aws_credentials(call(request(env, datetime.datetime.now(datetime.UTC))))


# --- Source ecs-ram-role: the instance RAM role from the ECS metadata server ---------------------------------
METADATA_HOST = "100.100.100.200"
TOKEN_PATH = "/latest/api/token"
ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
TOKEN_TTL_SECONDS = 21600  # the credential SDKs' DEFAULT_METADATA_TOKEN_DURATION (6 h)
# RAM role names: 1-64 letters, digits, '.' and '-' (RAM CreateRole, RoleName).
ROLE_NAME = re.compile(r"[A-Za-z0-9.-]{1,64}")


def metadata_url(env: dict[str, str]) -> str:
    """http://100.100.100.200, or LLM_ECS_METADATA_ENDPOINT on a loopback address (a local test server)."""
    raw = env.get("LLM_ECS_METADATA_ENDPOINT", "").strip()
    if not raw:
        return f"http://{METADATA_HOST}"
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or parts.username or parts.password:
        raise Failure("LLM_ECS_METADATA_ENDPOINT may only name a loopback http:// address (tests); unset it on ECS")
    return f"http://{parts.netloc}"


def _metadata(url: str, headers: dict[str, str], method: str = "GET", attempts: int = ATTEMPTS) -> bytes:
    """One read of the metadata server; connection errors and 5xx retried, a 4xx final. No body is echoed."""
    last = "no attempt"
    path = urllib.parse.urlsplit(url).path
    for attempt in range(attempts):
        req = urllib.request.Request(url, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as answer:
                return answer.read()
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise Failure(f"the ECS metadata server answered HTTP {error.code} to {method} {path}") from None
            last = f"the ECS metadata server answered HTTP {error.code} to {method} {path}"
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            last = f"cannot reach the ECS metadata server at {urllib.parse.urlsplit(url).netloc}: {reason}"
        if attempt + 1 < attempts:
            time.sleep(2**attempt)
    raise Failure(f"{last} (after {attempts} attempts)")


def metadata_token(base: str, env: dict[str, str]) -> str | None:
    """A metadata token (hardened mode), or None to read without one where the server allows it."""
    try:
        token = _metadata(
            base + TOKEN_PATH, {"X-aliyun-ecs-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)}, "PUT", 1
        )
    except Failure as failure:
        if env.get("ALIBABA_CLOUD_IMDSV1_DISABLED", "").strip().lower() == "true":
            raise Failure(f"no metadata token (ALIBABA_CLOUD_IMDSV1_DISABLED=true): {failure}") from None
        return None
    return token.decode(errors="replace").strip() or None


def ecs_ram_role(env: dict[str, str]) -> dict[str, object]:
    base = metadata_url(env)
    token = metadata_token(base, env)
    headers = {"X-aliyun-ecs-metadata-token": token} if token else {}
    role = env.get("ALIBABA_CLOUD_ECS_METADATA", "").strip()
    if not role:
        listed = _metadata(base + ROLE_PATH, headers).decode(errors="replace").strip().splitlines()
        if not listed:
            raise Failure("the instance has no RAM role attached (the metadata server lists none)")
        role = listed[0].strip()
    if not ROLE_NAME.fullmatch(role):
        raise Failure("the RAM role name is not 1-64 letters, digits, '.' or '-'")
    try:
        body = _metadata(base + ROLE_PATH + role, headers)
    except Failure as failure:
        raise Failure(f"{failure} (is RAM role {role} attached to this instance?)") from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise Failure(f"the ECS metadata server answered role {role} with a body that is not JSON") from None
    if not isinstance(answer, dict) or answer.get("Code") != "Success":
        code = answer.get("Code") if isinstance(answer, dict) else None
        raise Failure(f"the ECS metadata server answered role {role} with Code {str(code)[:64]!r}, not 'Success'")
    return _aws(answer, f"the ECS metadata server answered role {role}")


# --- Entry point -----------------------------------------------------------------------------------------------
SOURCES = {"rrsa": rrsa, "ecs-ram-role": ecs_ram_role}


def main(env: dict[str, str], argv: list[str] | None = None) -> int:
    args = list(argv or [])
    source = "rrsa"
    if args[:1] == ["--source"] and len(args) == 2:
        source = args[1]
    elif args:
        source = ""
    if source not in SOURCES:
        print(f"{NAME}: usage: {NAME}.py [--source {'|'.join(SOURCES)}]", file=sys.stderr)
        return 2
    try:
        credentials = SOURCES[source](env)
    except Failure as failure:
        print(f"{NAME} ({source}): {failure}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(credentials))
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(os.environ), sys.argv[1:]))
