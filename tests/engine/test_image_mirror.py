"""The image mirror's copy (components/scripts/llm-image-mirror.py, engine.mirror on acs/ack), run for real: the
script's `copy SOURCE DESTINATION AUTHFILE --plain-http` with Debian's skopeo against two CNCF distribution registries
(`docker-registry serve`) on loopback, the source anonymous, the destination behind htpasswd basic authentication.

The source holds a tiny multi-platform image built here (an OCI index with a linux/amd64 and a linux/arm64 image, each
one gzip layer and a config), pushed with `skopeo copy --all`. The script must copy the amd64 image only, check it,
copy nothing the second time, and fail without printing a secret when the password is wrong or the source missing.
The auth file is the script's own `auth_file()`.

What this does not show: ACR Enterprise Edition itself (its token from GetAuthorizationToken, its immutable tags, its
VPC endpoint), TLS, and Ubuntu 22.04's skopeo 1.4.1 (Debian bookworm's 1.9.3 runs here).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, free_port, stop

SCRIPT = ROOT / "components" / "scripts" / "llm-image-mirror.py"
USER = "mirror-pusher"
PASSWORD = "engine-suite-only-Pw-7f3c9e"  # a test registry's; its base64 must not be printed either
REPOSITORY = "engine"
TAG = "v1"
ARM_ONLY_TAG = "arm-only"
WRITES = re.compile(r'"(PUT|POST|PATCH|DELETE) (\S+) HTTP/')  # the registry's access log (combined log format)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _tools() -> None:
    missing = [tool for tool in ("skopeo", "docker-registry") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{', '.join(missing)} missing but installable: ./scripts/test.sh --engine installs them")
    pytest.skip(f"{', '.join(missing)} missing and not installable here (not root or no apt-get)")


def mirror_module():
    if str(SCRIPT.parent) not in sys.path:  # its shared llm_worker_api is beside it, as on the worker
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("llm_image_mirror", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line; the distribution registry accepts bcrypt only. The C library's crypt (libxcrypt on Debian)
    makes it: Python's crypt module is in CPython 3.11, the engine venv's (deprecated there, removed in 3.13)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    assert crypt.METHOD_BLOWFISH in crypt.methods, "this C library's crypt has no bcrypt"
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    assert hashed.startswith("$2b$"), hashed
    return f"{user}:{hashed}\n"


# --- The image ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    manifest: str  # digest
    config: str
    layers: tuple[str, ...]


def build_layout(directory: Path) -> dict[str, Platform]:
    """An OCI image layout: `v1` an index of a linux/amd64 and a linux/arm64 image, `arm-only` an index of the
    arm64 one. Each image has one gzip layer (a file naming its platform) and its config."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(media_type: str, data: bytes, **extra) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}

    platforms, entries = {}, {}
    for arch in ("amd64", "arm64"):
        body = f"engine for linux/{arch}\n".encode()
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            info = tarfile.TarInfo("platform.txt")
            info.size, info.mtime = len(body), 0
            archive.addfile(info, io.BytesIO(body))
        layer = blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(tar.getvalue(), mtime=0))
        config = blob(
            "application/vnd.oci.image.config.v1+json",
            json.dumps(
                {
                    "architecture": arch,
                    "os": "linux",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar.getvalue()).hexdigest()}"]},
                }
            ).encode(),
        )
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]})
        entries[arch] = blob(OCI_MANIFEST, manifest.encode(), platform={"architecture": arch, "os": "linux"})
        platforms[arch] = Platform(entries[arch]["digest"], config["digest"], (layer["digest"],))

    def index(tag: str, archs: tuple[str, ...]) -> dict:
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entries[a] for a in archs]})
        return blob(OCI_INDEX, data.encode(), annotations={"org.opencontainers.image.ref.name": tag})

    refs = [index(TAG, ("amd64", "arm64")), index(ARM_ONLY_TAG, ("arm64",))]
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": refs}))
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return platforms


# --- The registries -------------------------------------------------------------------------------------------


@dataclass
class Registry:
    process: subprocess.Popen
    address: str  # host:port
    storage: Path
    log: Path

    def reference(self, path: str) -> str:
        return f"{self.address}/{path}"

    def writes(self, since: int = 0) -> list[tuple[str, str]]:
        """(method, path) of every request that writes, from byte `since` of the log on."""
        return WRITES.findall(self.log.read_bytes()[since:].decode(errors="replace"))

    def log_size(self) -> int:
        return self.log.stat().st_size

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file of the storage with its size and modification time."""
        return {
            str(p.relative_to(self.storage)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in self.storage.rglob("*")
            if p.is_file()
        }

    def has_blob(self, digest: str) -> bool:
        hexa = digest.split(":", 1)[1]
        return (self.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data").is_file()


def start_registry(directory: Path, htpasswd: Path | None = None) -> Registry:
    directory.mkdir()
    port = free_port()
    storage = directory / "storage"
    config = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {"filesystem": {"rootdirectory": str(storage)}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "engine-suite", "path": str(htpasswd)}}
    (directory / "config.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
    log = directory / "registry.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(directory / "config.yml")],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    registry = Registry(process, f"127.0.0.1:{port}", storage, log)
    deadline = time.monotonic() + 30
    while True:  # any answer of the API's base endpoint (200 anonymous, 401 with authentication)
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://{registry.address}/v2/", timeout=2).close()
            return registry
        except urllib.error.HTTPError as answer:
            if answer.code == 401:
                return registry
            raise
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"docker-registry on {registry.address} did not answer") from None
            time.sleep(0.2)


@dataclass
class Setup:
    source: Registry
    destination: Registry
    platforms: dict[str, Platform]
    authfile: str
    bad_authfile: str
    env: dict[str, str]


def skopeo(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    _tools()
    base = tmp_path_factory.mktemp("image-mirror")
    htpasswd = base / "htpasswd"
    htpasswd.write_text(bcrypt_line(USER, PASSWORD))
    # skopeo reads no auth file of this machine's user: HOME is a fresh directory, and no XDG_RUNTIME_DIR.
    home = base / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    env["HOME"] = str(home)
    source = start_registry(base / "source")
    destination = start_registry(base / "destination", htpasswd)
    try:
        platforms = build_layout(base / "layout")
        for tag in (TAG, ARM_ONLY_TAG):
            skopeo(
                env,
                "copy",
                "--all",
                "--dest-tls-verify=false",
                f"oci:{base / 'layout'}:{tag}",
                f"docker://{source.reference(f'{REPOSITORY}:{tag}')}",
            )
        module = mirror_module()
        good, bad = base / "auth", base / "bad-auth"
        good.mkdir(mode=0o700)
        bad.mkdir(mode=0o700)
        authfile = module.auth_file(str(good), destination.address, USER, PASSWORD)
        bad_authfile = module.auth_file(str(bad), destination.address, USER, PASSWORD + "x")
        yield Setup(source, destination, platforms, authfile, bad_authfile, env)
    finally:
        stop(destination.process, seconds=10)
        stop(source.process, seconds=10)


def mirror(setup: Setup, source: str, destination: str, authfile: str) -> subprocess.CompletedProcess:
    """The script as the worker's command runs it (here with --plain-http: the registries are loopback HTTP)."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), "copy", source, destination, authfile, "--plain-http"],
        capture_output=True,
        text=True,
        env=setup.env,
        timeout=300,
    )


def result(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])["result"]


def no_secret(run: subprocess.CompletedProcess) -> None:
    printed = run.stdout + run.stderr
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert PASSWORD not in printed and token not in printed and PASSWORD[:12] not in printed


@dataclass
class FirstCopy:
    run: subprocess.CompletedProcess
    seconds: float
    destination: str
    source_log: str  # what the source registry logged during the run


@pytest.fixture(scope="module")
def first_copy(setup) -> FirstCopy:
    destination = setup.destination.reference(f"ns/{REPOSITORY}:{TAG}")
    assert not setup.destination.files()  # nothing there before
    since, started = setup.source.log_size(), time.monotonic()
    run = mirror(setup, setup.source.reference(f"{REPOSITORY}:{TAG}"), destination, setup.authfile)
    seconds = time.monotonic() - started
    return FirstCopy(run, seconds, destination, setup.source.log.read_bytes()[since:].decode(errors="replace"))


def test_the_first_run_copies_the_amd64_image_only_and_checks_it(setup, first_copy):
    assert result(first_copy.run) == "copied", first_copy.run.stderr
    no_secret(first_copy.run)
    amd64, arm64 = setup.platforms["amd64"], setup.platforms["arm64"]
    raw = json.loads(
        skopeo(
            setup.env,
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--authfile",
            setup.authfile,
            f"docker://{first_copy.destination}",
        )
    )
    # One image manifest, not the index: the amd64 image's config and layers.
    assert "manifests" not in raw and raw["mediaType"] == OCI_MANIFEST
    assert raw["config"]["digest"] == amd64.config
    assert tuple(layer["digest"] for layer in raw["layers"]) == amd64.layers
    assert all(setup.destination.has_blob(d) for d in (amd64.config, *amd64.layers))
    assert not any(setup.destination.has_blob(d) for d in (arm64.config, *arm64.layers))
    # Pushed with the auth file, manifest last; the arm64 blobs were never even read from the source.
    writes = setup.destination.writes()
    assert ("PUT", f"/v2/ns/{REPOSITORY}/manifests/{TAG}") in writes, writes
    assert all(f"GET /v2/{REPOSITORY}/blobs/{d} " in first_copy.source_log for d in (amd64.config, *amd64.layers))
    assert not any(d in first_copy.source_log for d in (arm64.manifest, arm64.config, *arm64.layers))


def test_a_second_run_finds_the_copy_present_and_pushes_nothing(setup, first_copy):
    assert result(first_copy.run) == "copied", first_copy.run.stderr
    before, since = setup.destination.files(), setup.destination.log_size()
    run = mirror(setup, setup.source.reference(f"{REPOSITORY}:{TAG}"), first_copy.destination, setup.authfile)
    assert result(run) == "present", run.stderr
    no_secret(run)
    assert setup.destination.writes(since) == []
    assert setup.destination.files() == before  # not a byte of the storage touched
    # It did look: the destination's manifest was read with the credentials.
    assert f'GET /v2/ns/{REPOSITORY}/manifests/{TAG} HTTP/1.1" 200' in setup.destination.log.read_text()[since:]


def test_a_wrong_password_fails_before_any_push_and_prints_no_secret(setup):
    before, since = setup.destination.files(), setup.destination.log_size()
    run = mirror(
        setup,
        setup.source.reference(f"{REPOSITORY}:{TAG}"),
        setup.destination.reference(f"ns/{REPOSITORY}:wrong-password"),
        setup.bad_authfile,
    )
    assert run.returncode != 0
    assert "unauthorized" in run.stderr and "Traceback" not in run.stderr, run.stderr
    no_secret(run)
    bad_token = base64.b64encode(f"{USER}:{PASSWORD}x".encode()).decode()
    assert bad_token not in run.stdout + run.stderr
    assert setup.destination.writes(since) == [] and setup.destination.files() == before


def test_a_missing_source_fails_clearly_and_writes_nothing(setup):
    before, since = setup.destination.files(), setup.destination.log_size()
    source = setup.source.reference(f"{REPOSITORY}:no-such-tag")
    run = mirror(setup, source, setup.destination.reference(f"ns/{REPOSITORY}:from-missing"), setup.authfile)
    assert run.returncode != 0
    assert f"the source image {source} does not exist" in run.stderr, run.stderr
    no_secret(run)
    assert setup.destination.log_size() == since and setup.destination.files() == before  # not even asked
    missing_repository = setup.source.reference("no-such-repository:v1")
    run = mirror(setup, missing_repository, setup.destination.reference(f"ns/{REPOSITORY}:x"), setup.authfile)
    assert run.returncode != 0 and f"{missing_repository} does not exist" in run.stderr, run.stderr


def test_a_source_without_an_amd64_image_is_refused_and_writes_nothing(setup):
    before, since = setup.destination.files(), setup.destination.log_size()
    source = setup.source.reference(f"{REPOSITORY}:{ARM_ONLY_TAG}")
    run = mirror(setup, source, setup.destination.reference(f"ns/{REPOSITORY}:{ARM_ONLY_TAG}"), setup.authfile)
    assert run.returncode != 0
    assert f"{source} has no linux/amd64 image" in run.stderr, run.stderr
    assert setup.destination.writes(since) == [] and setup.destination.files() == before
