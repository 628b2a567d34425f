"""Alibaba Cloud endpoints on loopback for the tests of both suites (standard library only: the real-engine suite's
venv has no Pulumi): STS's AssumeRoleWithOIDC and the ECS metadata server, in the shapes Alibaba documents.

- STS AssumeRoleWithOIDC: Credentials {AccessKeyId, AccessKeySecret, SecurityToken, Expiration}, AssumedRoleUser,
  OIDCTokenInfo, RequestId; errors: HTTP 4xx with Code, Message, RequestId, HostId, Recommend.
- ECS metadata: PUT /latest/api/token (header X-aliyun-ecs-metadata-token-ttl-seconds) answers a token, GET
  /latest/meta-data/ram/security-credentials/ lists the instance's role and .../<role> its credentials; in security
  hardening mode a GET without the token (X-aliyun-ecs-metadata-token) is refused.
The real services are not called here: what they accept is only what their API pages say.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"
METADATA_TOKEN = "FAKE-TEST-ONLY-metadata-token"


def serve_on_loopback(handler: type) -> tuple[ThreadingHTTPServer, str]:
    """`handler` (a BaseHTTPRequestHandler) served on a free loopback port in a daemon thread: the server (shut it
    down) and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _send(handler: BaseHTTPRequestHandler, status: int, body: object, json_type: bool = False) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    if json_type:
        handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


def in_an_hour() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))


def sts_success(key_id: str, secret: str, token: str, expiration: str, role_arn: str = "") -> dict:
    """An AssumeRoleWithOIDC answer with these temporary credentials."""
    return {
        "RequestId": "3D57EAD2-8723-1F26-B69C-F8707D8B565D",
        "OIDCTokenInfo": {
            "Subject": "system:serviceaccount:llm:llm-streamer",
            "Issuer": "https://oidc-ack",
            "ClientIds": "sts.aliyuncs.com",
        },
        "AssumedRoleUser": {"AssumedRoleId": "33157794895460****", "Arn": f"{role_arn}/llm-model-streamer"},
        "Credentials": {
            "SecurityToken": token,
            "Expiration": expiration,
            "AccessKeySecret": secret,
            "AccessKeyId": key_id,
        },
    }


def role_credentials(key_id: str, secret: str, token: str, expiration: str) -> dict:
    """What the metadata server answers for an instance's RAM role."""
    return {
        "AccessKeyId": key_id,
        "AccessKeySecret": secret,
        "SecurityToken": token,
        "Expiration": expiration,
        "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "Code": "Success",
    }


class FakeSts:
    """STS on loopback: records each POST (path, query, form, headers), answers it with the next queued
    (status, body), else with `default(request)`."""

    def __init__(self, default: Callable[[dict], tuple[int, object]]):
        self.answers: list[tuple[int, object]] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                parts = urllib.parse.urlsplit(self.path)
                request = {
                    "path": parts.path,
                    "query": dict(urllib.parse.parse_qsl(parts.query)),
                    "form": dict(urllib.parse.parse_qsl(self.rfile.read(length).decode())),
                    "headers": dict(self.headers),
                }
                fake.requests.append(request)
                _send(self, *(fake.answers.pop(0) if fake.answers else default(request)), json_type=True)

            def log_message(self, *args):
                pass

        self.server, self.url = serve_on_loopback(Handler)


class FakeMetadata:
    """The ECS metadata server on loopback: records each request (method, path, headers in lower case: HTTP's are
    case-insensitive). `roles`: each role's (status, body); `hardened`: a GET without the token is refused (403), as in
    security hardening mode; `token_status`: what the PUT answers (404: an older server without tokens)."""

    def __init__(self, roles: dict[str, tuple[int, object]], hardened: bool = False):
        self.roles = roles
        self.hardened = hardened
        self.token_status = 200
        self.requests: list[tuple[str, str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                fake.requests.append(("PUT", self.path, {k.lower(): v for k, v in self.headers.items()}))
                ok = self.path == "/latest/api/token" and self.headers.get("X-aliyun-ecs-metadata-token-ttl-seconds")
                if fake.token_status != 200 or not ok:
                    return _send(self, fake.token_status if fake.token_status != 200 else 400, b"")
                _send(self, 200, METADATA_TOKEN.encode())

            def do_GET(self):
                fake.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
                if fake.hardened and self.headers.get("X-aliyun-ecs-metadata-token") != METADATA_TOKEN:
                    return _send(self, 403, b"")
                if self.path == CREDENTIALS_PATH:
                    return _send(self, 200, "\n".join(fake.roles).encode())
                role = self.path[len(CREDENTIALS_PATH) :] if self.path.startswith(CREDENTIALS_PATH) else None
                if role in fake.roles:
                    return _send(self, *fake.roles[role])
                _send(self, 404, b"<html>Not Found</html>")

            def log_message(self, *args):
                pass

        self.server, self.url = serve_on_loopback(Handler)

    def tokened(self, request: tuple[str, str, dict]) -> bool:
        return request[2].get("x-aliyun-ecs-metadata-token") == METADATA_TOKEN


def imported_objects(prefix: str, files: dict[str, bytes], model: str, revision: str, workers: int) -> dict[str, bytes]:
    """The objects the Alibaba targets' import workers leave under `prefix` (models/<ModelScope id>): each share's
    files and its manifest, .llm-import/worker-I-of-N.json, made by llm-model-import.py's own partition and manifest
    functions, so a test of a reader (fetch-oss.py, the engine's streamer) sees what the workers would write."""
    from worker_scripts import load  # tests/: components/scripts loaded as modules (standard library only)

    importer = load("llm-model-import.py", "llm_model_import")
    hub = [{"path": path, "size": len(data), "sha256": ""} for path, data in files.items()]
    objects = {f"{prefix}/{path}": data for path, data in files.items()}
    for worker, share in enumerate(importer.partition(hub, workers)):
        document = importer.manifest(model, revision, worker, workers, share)
        objects[importer.manifest_key(prefix, worker, workers)] = document.encode()
    return objects
