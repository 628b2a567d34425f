#!/usr/bin/python3
"""Copies the engine image into the stack's ACR Enterprise Edition repository, on a short-lived ECS worker.

Run by the worker's Cloud Assistant command (image-mirror-worker.sh) as
  llm-image-mirror run SOURCE DESTINATION INSTANCE_ID REGION
and, once that succeeded, as `llm-image-mirror stop-self REGION` (the worker stops itself, StopCharging).
`llm-image-mirror copy SOURCE DESTINATION AUTHFILE [--plain-http]` is the copy alone, with a registry auth file
(the engine suite runs it against local registries; --plain-http only there).

- Credentials: GetAuthorizationToken (Container Registry API 2018-12-01, InstanceId) with the instance's RAM role
  (temporary STS credentials from the metadata service) gives a temporary user name and password for the
  instance. They go into an auth file (mode 0600 in a 0700 directory), never onto a command line.
- The copy: `skopeo copy` of the linux/amd64 image (the GPU nodes' platform; a multi-platform source is not
  copied whole), layer by layer, retried. The destination tag is immutable in the repository, so the mirror
  cannot drift from the source it was made from.
- A re-run with the copy present copies nothing: when the destination's manifest has the source's config and
  layer digests, it is only checked. After a copy the same check must pass, or the run fails.
"""

# pyright: reportMissingImports=false
# (aliyunsdkcore is installed on the worker, not in the test environment)
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Optional

from llm_worker_api import call, stop_self  # beside this script (components/scripts, /usr/local/bin)

LIB = "/opt/llm-mirror/lib"
PLATFORM = ("linux", "amd64")
COPY_ATTEMPTS = 3
MANIFEST_LISTS = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)

# How the registry API says a tag or repository is not there (distribution spec error codes MANIFEST_UNKNOWN,
# NAME_UNKNOWN, as skopeo prints them).
MISSING = ("manifest unknown", "name unknown", "not found")

Skopeo = Callable[[list[str]], str]  # argv after `skopeo` -> stdout; raises CalledProcessError


def skopeo(args: list[str]) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


def registry_host(reference: str) -> str:
    return reference.split("/", 1)[0]


def auth_file(directory: str, registry: str, username: str, password: str) -> str:
    """A containers-auth.json for one registry, readable by this user only."""
    path = os.path.join(directory, "auth.json")
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"auths": {registry: {"auth": token}}}, out)
    return path


def _base(reference: str) -> str:
    """The repository part of a reference (no tag, no digest)."""
    name = reference.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def platform_manifest(run: Skopeo, reference: str, flags: list[str]) -> Optional[dict]:
    """The linux/amd64 image manifest of `reference`, None when it does not exist."""
    try:
        raw = json.loads(run(["inspect", "--raw", *flags, f"docker://{reference}"]))
    except subprocess.CalledProcessError as failed:
        if any(sign in (failed.stderr or "").lower() for sign in MISSING):
            return None
        raise
    if raw.get("mediaType") in MANIFEST_LISTS or "manifests" in raw:
        wanted = [
            m
            for m in raw["manifests"]
            if (m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture")) == PLATFORM
        ]
        if not wanted:
            raise SystemExit(f"{reference} has no {'/'.join(PLATFORM)} image")
        raw = json.loads(run(["inspect", "--raw", *flags, f"docker://{_base(reference)}@{wanted[0]['digest']}"]))
    return raw


def content(manifest: dict) -> tuple[str, tuple[str, ...]]:
    """What makes two image manifests the same image: the config's digest and the layers' digests, in order."""
    return manifest["config"]["digest"], tuple(layer["digest"] for layer in manifest["layers"])


def copy(source: str, destination: str, authfile: str, plain_http: bool = False, run: Skopeo = skopeo) -> str:
    """Copy `source` (anonymous) to `destination` (with `authfile`) unless it is there already; 'present' or
    'copied'. Raises when the copy does not end with the source's content at the destination."""
    tls = ["--tls-verify=false"] if plain_http else []
    src_flags, dest_flags = tls, [*tls, "--authfile", authfile]
    wanted = platform_manifest(run, source, src_flags)
    if wanted is None:
        raise SystemExit(f"the source image {source} does not exist")
    present = platform_manifest(run, destination, dest_flags)
    if present is not None and content(present) == content(wanted):
        return "present"
    copy_flags = ["--src-tls-verify=false", "--dest-tls-verify=false"] if plain_http else []
    for attempt in range(1, COPY_ATTEMPTS + 1):
        try:
            run(
                [
                    "--override-os",
                    PLATFORM[0],
                    "--override-arch",
                    PLATFORM[1],
                    "copy",
                    *copy_flags,
                    "--dest-authfile",
                    authfile,
                    f"docker://{source}",
                    f"docker://{destination}",
                ]
            )
            break
        except subprocess.CalledProcessError as failed:
            print(f"copy attempt {attempt}/{COPY_ATTEMPTS} failed: {(failed.stderr or '').strip()}", file=sys.stderr)
            if attempt == COPY_ATTEMPTS:
                raise
            time.sleep(attempt * 20)
    copied = platform_manifest(run, destination, dest_flags)
    if copied is None or content(copied) != content(wanted):
        raise SystemExit(f"{destination} does not hold the image of {source} after the copy")
    return "copied"


def token(instance_id: str, region: str) -> tuple[str, str]:
    """A temporary user name and password for the ACR instance, from the instance's RAM role."""
    answer = call(
        region, f"cr.{region}.aliyuncs.com", "2018-12-01", "GetAuthorizationToken", {"InstanceId": instance_id}
    )
    return parse_token(answer)


def parse_token(body: bytes | str) -> tuple[str, str]:
    """TempUsername and AuthorizationToken of a GetAuthorizationToken response (alibabacloud-cr20181201 models)."""
    answer = json.loads(body)
    if not answer.get("IsSuccess", True) or not answer.get("AuthorizationToken"):
        raise SystemExit(f"GetAuthorizationToken failed: code {answer.get('Code')}")
    return answer["TempUsername"], answer["AuthorizationToken"]


def run(source: str, destination: str, instance_id: str, region: str) -> int:
    username, password = token(instance_id, region)
    with tempfile.TemporaryDirectory(prefix="llm-mirror-") as directory:  # mode 0700
        result = copy(source, destination, auth_file(directory, registry_host(destination), username, password))
    print(json.dumps({"source": source, "destination": destination, "result": result}))
    return 0


USAGE = """usage: llm-image-mirror run SOURCE DESTINATION INSTANCE_ID REGION
       llm-image-mirror copy SOURCE DESTINATION AUTHFILE [--plain-http]
       llm-image-mirror stop-self REGION"""


def main(argv: list[str]) -> int:
    sys.path.insert(0, LIB)
    try:
        if len(argv) == 6 and argv[1] == "run":
            return run(*argv[2:6])
        if len(argv) in (5, 6) and argv[1] == "copy" and argv[5:] in ([], ["--plain-http"]):
            print(json.dumps({"result": copy(argv[2], argv[3], argv[4], plain_http=argv[5:] == ["--plain-http"])}))
            return 0
    except subprocess.CalledProcessError as failed:
        # skopeo's own reason (e.g. "unauthorized: authentication required"), which the traceback would not show.
        # Its argv names the auth file, never the credentials in it.
        print(f"skopeo failed (exit {failed.returncode}): {(failed.stderr or '').strip()}", file=sys.stderr)
        return 1
    if len(argv) == 3 and argv[1] == "stop-self":
        return stop_self(argv[2])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
