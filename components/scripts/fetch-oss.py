#!/usr/bin/env python3
"""Copies one model's weights from an OSS bucket in the region onto the host, with parallel ranged GETs.

Usage: fetch-oss.py --bucket B --prefix P --endpoint E --parallel N --marker MODEL@REVISION [--check-only]
       [--wait-seconds S [--poll-seconds P]] DIR

The bucket is read over its internal endpoint (oss-<region>-internal.aliyuncs.com: no NAT, no internet traffic)
with the instance RAM role's temporary credentials from the metadata service
(http://100.100.100.200/latest/meta-data/ram/security-credentials/ names the role, .../<role> gives its STS
credentials, refreshed before they expire; the same reads Cloud Assistant makes, aliyun_assist_client
agent/util/paramstore.go), so no AccessKey is stored anywhere. The role is attached just after the instance is
created (ecs.RamRoleAttachment), so its name is waited for, up to ROLE_WAIT_SECONDS.

Only a finished import of MODEL@REVISION is copied, and only its files. Two writers mark one as finished:
- the Alibaba targets' import workers (llm-model-import.py): a complete set of manifests
  P/.llm-import/worker-I-of-N.json (I = 0..N-1), each naming the model and revision and listing its share's
  files with their sizes; the copy takes the files of every share;
- fetch-model.sh (a download into a mounted bucket): P/.download-complete names the model and revision, and the
  copy takes every object under P but the markers.
Either way every file must be in the bucket with its recorded size, or nothing is copied. --check-only checks
that and copies nothing (the engine streams the bucket itself). --wait-seconds S: while no import is finished (the
stack's own workers fill the bucket as the host boots), P is listed again every --poll-seconds, up to S seconds,
with a line of progress each time; 0 (the default) refuses at once. Idempotent: DIR/.download-complete is written
last and checked first; a file already there with the object's size is kept, so a rerun after a failure copies
only what is missing.
Python standard library only (Ubuntu's python3). Requests carry OSS's V4 signature (OSS API reference, "Include
a V4 signature in the Authorization header"): OSS refuses V1 for buckets created since 2025-09-01, and V4 scopes
the signature to the bucket's region, read from the endpoint. ListObjects (GET /?prefix=&marker=); GetObject with
Range. tests/test_scripts.py checks the signature against Alibaba's OSS SDK's own V4 signer.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

METADATA = "http://100.100.100.200/latest/meta-data/ram/security-credentials/"
MARKER = ".download-complete"
IMPORT_DIR = ".llm-import"  # the import workers' manifests (llm-model-import.py MANIFEST_DIR)
MANIFEST = re.compile(r"worker-(\d+)-of-(\d+)\.json")
CHUNK = 64 * 1024 * 1024  # bytes per ranged GET
ROLE_WAIT_SECONDS = 600


def role_name() -> str:
    deadline = time.monotonic() + ROLE_WAIT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(METADATA, timeout=10) as r:
                name = r.read().decode().strip()
            if name:
                return name.splitlines()[0]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"no RAM role on this instance after {ROLE_WAIT_SECONDS} s")
        time.sleep(10)


class Credentials:
    """The role's STS credentials, fetched again five minutes before they expire."""

    def __init__(self, role: str) -> None:
        self.role, self.lock = role, threading.Lock()
        self.value: dict = {}
        self.expires = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)  # noqa: UP017 (Python 3.10)

    def get(self) -> dict:
        with self.lock:
            now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 (Ubuntu 22.04: Python 3.10)
            if self.expires - now < datetime.timedelta(minutes=5):
                with urllib.request.urlopen(METADATA + self.role, timeout=10) as r:
                    self.value = json.load(r)
                self.expires = datetime.datetime.strptime(self.value["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=datetime.timezone.utc,  # noqa: UP017 (Ubuntu 22.04: Python 3.10)
                )
            return self.value


def endpoint_region(endpoint: str) -> str:
    """The region of an OSS endpoint (oss-<region>.aliyuncs.com, oss-<region>-internal.aliyuncs.com)."""
    found = re.fullmatch(r"oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com", endpoint)
    if not found:
        raise SystemExit(f"{endpoint!r} is not an OSS endpoint like oss-cn-hangzhou-internal.aliyuncs.com")
    return found.group(1)


def v4_headers(creds: dict, region: str, bucket: str, key: str, query: str, now: datetime.datetime) -> dict:
    """The headers that sign a GET of /<key>?<query> (query: encoded pairs, sorted) in `bucket` with OSS's V4
    signature: the canonical request (method, URI, query, the x-oss-* headers, no additional headers, an unsigned
    payload), its SHA-256 in the string to sign, and an HMAC-SHA256 key derived from the secret through the date,
    the region, "oss" and "aliyun_v4_request"."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/{region}/oss/aliyun_v4_request"
    headers = {
        "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
        "x-oss-date": stamp,
        "x-oss-security-token": creds["SecurityToken"],
    }
    pairs = [pair if not pair.endswith("=") else pair[:-1] for pair in query.split("&")] if query else []
    canonical = "\n".join(
        [
            "GET",
            urllib.parse.quote(f"/{bucket}/{key}", safe="/"),
            "&".join(pairs),
            "".join(f"{name}:{value}\n" for name, value in sorted(headers.items())),
            "",
            "UNSIGNED-PAYLOAD",
        ]
    )
    to_sign = "\n".join(["OSS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = ("aliyun_v4" + creds["AccessKeySecret"]).encode()
    for part in (stamp[:8], region, "oss", "aliyun_v4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"OSS4-HMAC-SHA256 Credential={creds['AccessKeyId']}/{scope},Signature={signature}"
    return headers


def encoded_query(params: dict[str, str]) -> str:
    """`params` as a URL query, each name and value percent-encoded ('/' too), sorted, empty values left out: the
    form both the URL and the V4 canonical request take."""
    quote = lambda text: urllib.parse.quote(text, safe="")
    return "&".join(sorted(f"{quote(k)}={quote(v)}" for k, v in params.items() if v))


def signed_get(
    args, credentials: Credentials, key: str, params: dict | None = None, headers: dict | None = None
) -> bytes:
    query = encoded_query(params or {})
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 (Ubuntu 22.04: Python 3.10)
    signed = v4_headers(credentials.get(), args.region, args.bucket, key, query, now)
    request = urllib.request.Request(
        f"https://{args.bucket}.{args.endpoint}/{urllib.parse.quote(key)}" + (f"?{query}" if query else ""),
        headers={**signed, **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=300) as r:
        return r.read()


def list_objects(args, credentials: Credentials) -> list[tuple[str, int]]:
    found, marker = [], ""
    while True:
        params = {"prefix": args.prefix + "/", "marker": marker, "max-keys": "1000"}
        root = ET.fromstring(signed_get(args, credentials, "", params))
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for item in root.findall(f"{ns}Contents"):
            key, size = item.findtext(f"{ns}Key") or "", int(item.findtext(f"{ns}Size") or 0)
            if not key.endswith("/"):
                found.append((key, size))
        if (root.findtext(f"{ns}IsTruncated") or "false").lower() != "true":
            return found
        marker = root.findtext(f"{ns}NextMarker") or found[-1][0]


def manifest_sets(prefix: str, keys) -> dict[int, dict[int, str]]:
    """The import workers' manifests among `keys`, by share count N and worker I."""
    sets: dict[int, dict[int, str]] = {}
    for key in keys:
        directory, _, name = key.rpartition("/")
        found = MANIFEST.fullmatch(name) if directory == f"{prefix}/{IMPORT_DIR}" else None
        if found and int(found.group(1)) < int(found.group(2)):
            sets.setdefault(int(found.group(2)), {})[int(found.group(1))] = key
    return sets


class Unfinished(SystemExit):
    """No finished import of the marker (yet): `seen`, what the bucket holds instead."""

    def __init__(self, args, seen: str) -> None:
        self.seen = seen
        super().__init__(
            f"oss://{args.bucket}/{args.prefix}/ holds no finished import of {args.marker!r} ({seen}): run the "
            "model import (the stack that imports into this bucket) and start again"
        )


def finished_import(args, credentials: Credentials, sizes: dict[str, int]) -> list[tuple[str, int]]:
    """The objects (key, size) of the finished import of args.marker under args.prefix, or Unfinished naming
    what the bucket holds instead."""
    seen = []
    for workers, shares in sorted(manifest_sets(args.prefix, sizes).items(), reverse=True):
        if len(shares) < workers:
            seen.append(f"{len(shares)} of {workers} import manifests")
            continue
        documents = [json.loads(signed_get(args, credentials, shares[i])) for i in range(workers)]
        names = {f"{d.get('model')}@{d.get('revision')}" for d in documents}
        if names == {args.marker}:
            paths = [f["path"] for d in documents for f in d["files"]]
            outside = [p for p in paths if p.startswith("/") or ".." in p.split("/")]
            if outside:
                raise SystemExit(f"oss://{args.bucket}/{args.prefix}/: manifest paths outside the model: {outside}")
            return [(f"{args.prefix}/{f['path']}", int(f["size"])) for d in documents for f in d["files"]]
        seen.append(f"an import of {' and '.join(sorted(names))}")
    if f"{args.prefix}/{MARKER}" in sizes:
        remote = signed_get(args, credentials, f"{args.prefix}/{MARKER}").decode().strip()
        if remote == args.marker:
            relative = lambda key: key[len(args.prefix) + 1 :]
            return [
                (k, s)
                for k, s in sizes.items()
                if relative(k) != MARKER and not relative(k).startswith(IMPORT_DIR + "/")
            ]
        seen.append(f"{MARKER} naming {remote!r}")
    raise Unfinished(args, "; ".join(seen) or f"no import manifests and no {MARKER}")


def wait_for_import(args, credentials: Credentials) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """The finished import's objects and every object's size under the prefix, listed again every
    args.poll_seconds while it is unfinished, up to args.wait_seconds."""
    started = time.monotonic()
    while True:
        sizes = dict(list_objects(args, credentials))
        try:
            return finished_import(args, credentials, sizes), sizes
        except Unfinished as unfinished:
            waited = time.monotonic() - started
            if waited >= args.wait_seconds:
                if not args.wait_seconds:
                    raise
                raise SystemExit(f"{unfinished} (waited {waited:.0f} s for it)") from None
            print(
                f"waiting for the model import into oss://{args.bucket}/{args.prefix}/: {unfinished.seen}, "
                f"{sum(sizes.values()) / 1e9:.1f} GB of objects so far ({waited:.0f} s of {args.wait_seconds:g})",
                flush=True,
            )
            time.sleep(min(args.poll_seconds, args.wait_seconds - waited))


def check_present(args, files: list[tuple[str, int]], sizes: dict[str, int]) -> None:
    """Every file of the import is in the bucket with its recorded size."""
    wrong = [
        f"{k[len(args.prefix) + 1 :]} ({sizes.get(k, 'missing')} bytes, {s} recorded)"
        for k, s in files
        if sizes.get(k) != s
    ]
    if wrong:
        shown = ", ".join(wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise SystemExit(f"oss://{args.bucket}/{args.prefix}/ misses files of its import: {shown}")


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--bucket", "--prefix", "--endpoint", "--marker"):
        parser.add_argument(name, required=True)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--check-only", action="store_true", help="check the import, copy nothing")
    parser.add_argument("--wait-seconds", type=float, default=0, help="wait this long for an unfinished import")
    parser.add_argument("--poll-seconds", type=float, default=20)
    parser.add_argument("target")
    args = parser.parse_args()
    args.prefix = args.prefix.strip("/")
    local_marker = os.path.join(args.target, MARKER)
    if not args.check_only and os.path.exists(local_marker) and open(local_marker).read().strip() == args.marker:
        print(f"{args.marker} is already complete in {args.target}")
        return 0
    args.region = endpoint_region(args.endpoint)  # the V4 scope of every request, read once
    credentials = Credentials(role_name())
    objects, sizes = wait_for_import(args, credentials)
    check_present(args, objects, sizes)
    if args.check_only:
        total = sum(s for _, s in objects)
        print(f"oss://{args.bucket}/{args.prefix}/: {args.marker}, {len(objects)} files, {total / 1e9:.1f} GB")
        return 0
    chunks, pending, lock = [], {}, threading.Lock()
    for key, size in objects:
        path = os.path.join(args.target, key[len(args.prefix) + 1 :])
        if os.path.exists(path) and os.path.getsize(path) == size:
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".part", "wb") as f:
            f.truncate(size)
        starts = list(range(0, size, CHUNK)) or [0]
        pending[path] = len(starts)
        chunks += [(key, path, start, min(start + CHUNK, size) - 1) for start in starts]
    total = sum(s for _, s in objects)
    print(f"{len(objects)} objects, {total / 1e9:.1f} GB; {len(chunks)} ranged GETs, {args.parallel} at a time")

    def fetch(chunk: tuple[str, str, int, int]) -> None:
        key, path, start, end = chunk
        data = b"" if end < start else signed_get(args, credentials, key, headers={"Range": f"bytes={start}-{end}"})
        if len(data) != max(end - start + 1, 0):
            raise OSError(f"{key} bytes {start}-{end}: got {len(data)} bytes")
        fd = os.open(path + ".part", os.O_WRONLY)
        try:
            os.pwrite(fd, data, start)
        finally:
            os.close(fd)
        with lock:
            pending[path] -= 1
            if pending[path] == 0:
                os.replace(path + ".part", path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for done in pool.map(fetch, chunks):
            del done
    with open(local_marker, "w") as f:
        f.write(args.marker + "\n")
    print(f"{args.marker} copied to {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
