"""An independent checker of what the gateway lets through: it finds holes, whatever the renderer says.

- probe(): sends every route the engine itself publishes (its /openapi.json, read from the engine
  port) plus known extras, with no key, a wrong key and the right key, and reports each answer that
  did not come from the gateway's own refusals (or the allowlist with the right key).
- audit_conf(): reads an nginx.conf and reports every location that proxies to the engine
  without the key check, other than GET /health and the metrics listener.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

# The bodies only the gateway makes (core/gateway.py); the engine's own refusals look different
# ({"detail": "Not Found"}, {"error": "Unauthorized"}).
GATEWAY_TYPES = {401: "authentication_error", 404: "not_found_error", 405: "invalid_request_error"}
EXTRA_PATHS = [
    "/invocations",
    "/tokenize",
    "/detokenize",
    "/pooling",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/redoc",
    "/v2/models",
    "/v2/completions",
    "/ping",
    "/version",
    "/load",
    "/classify",
    "/score",
    "/rerank",
    "/inference/v1/generate",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/models/../../invocations",
    "//invocations",
    "/v1//chat/completions/../../../tokenize",
    "/%69nvocations",
    "/V1/models",
]


def request(
    method: str, url: str, key: str | None = None, body: dict | None = None, timeout: float = 60
) -> tuple[int, bytes, dict]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def engine_routes(engine_url: str) -> dict[str, set[str]]:
    """{path: methods} from the engine's own OpenAPI document (read on the engine port)."""
    _, body, _ = request("GET", f"{engine_url}/openapi.json")
    spec = json.loads(body)
    return {path: {m.upper() for m in ops} for path, ops in spec["paths"].items()}


def _sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def from_gateway(status: int, body: bytes) -> bool:
    try:
        return json.loads(body)["error"]["type"] == GATEWAY_TYPES.get(status)
    except (ValueError, KeyError, TypeError):
        return False


def probe(base_url: str, key: str, routes: dict[str, set[str]], allowed: set[tuple[str, str]], model: str) -> list[str]:
    """Every way in that the gateway should refuse but did not, as 'METHOD path (key): status body'."""
    body = {
        "model": model,
        "prompt": "hi",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "hi"}],
        "input": "hi",
        "tokens": [1, 2],
        "text": "hi",
    }
    targets = {(m, _sample_path(p)) for p, ms in routes.items() for m in ms if m in ("GET", "POST")}
    targets |= {(m, p) for p in EXTRA_PATHS for m in ("GET", "POST")}
    targets |= {(m, p) for p, _ in allowed for m in ("GET", "POST", "PUT", "DELETE")}
    problems = []
    for method, path in sorted(targets):
        for label, presented in (("no key", None), ("wrong key", key[::-1]), ("key", key)):
            status, answer, _ = request(method, base_url + path, presented, body if method == "POST" else None)
            if method == "GET" and path == "/health":
                if status != 200 or answer:
                    problems.append(f"{method} {path} ({label}): {status} {answer[:80]!r}")
                continue
            if label == "key" and (path, method) in allowed:
                if status != 200:
                    problems.append(f"{method} {path} ({label}): {status}, expected the engine's 200")
                continue
            if path in {p for p, _ in allowed}:
                expected = {401} if label != "key" else {405}  # the key is checked before the method
            elif path == "/health":
                expected = {405}
            else:
                expected = {404}
            if status not in expected or not from_gateway(status, answer):
                problems.append(f"{method} {path} ({label}): {status} {answer[:80]!r}")
    return problems


_LOCATION = re.compile(r"location\s+([^{]+?)\s*\{(.*?)\n\s{8}\}", re.S)


def audit_conf(text: str) -> list[str]:
    """Locations that reach the engine without `$llm_key_ok` checked before proxy_pass."""
    api = text.split("# Prometheus only")[0]
    problems = []
    for match in _LOCATION.finditer(api):
        where, body = match.group(1).strip(), match.group(2)
        if "proxy_pass" not in body or where == "= /health":
            continue
        check = body.find("if ($llm_key_ok != 1)")
        if check < 0 or check > body.find("proxy_pass") or "return 401" not in body:
            problems.append(f"location {where} proxies to the engine without the key check")
    return problems


_ALLOWED = re.compile(r"location = (/\S*) \{\s*if \(\$llm_key_ok != 1\).*?if \(\$request_method != (\w+)\)", re.S)


def allowed_routes(text: str) -> set[tuple[str, str]]:
    """The (path, method) pairs an nginx.conf forwards with the key, read from the conf itself."""
    api = text.split("# Prometheus only")[0]
    return {(path, method) for path, method in _ALLOWED.findall(api)}
