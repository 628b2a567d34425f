"""The real-engine suite: real vLLM (CPU) behind real nginx, offline (tests/engine/README.md).

Session fixtures start, once: the tiny model (made here), `vllm serve` with the production argv
and the CPU substitutions (substitutions.py), and nginx with render_nginx_conf() unchanged.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]
sys.path.append(str(ROOT / "tests"))  # alibaba_fakes.py, shared with the main suite (last: it shadows nothing)


class _Anything:
    """Stands in for any Pulumi SDK name: a class to subclass, a type to annotate, a value."""

    def __init__(self, *args, **kwargs):
        pass

    def __class_getitem__(cls, item):
        return cls

    def __getattr__(self, name):
        return _Anything()

    def __call__(self, *args, **kwargs):
        return _Anything()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything


def _stub_pulumi_sdks() -> None:
    """The engine venv has no Pulumi SDKs. components/benchmark.py and stacks/client.py import them
    at the top, but the suite calls only their pure functions (bench_argv, curl_command,
    openai_snippet), so import-time stand-ins are enough."""
    for name in ("pulumi", "pulumi_kubernetes", "pulumi_random"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _StubModule(name)


_stub_pulumi_sdks()

import substitutions as subs  # noqa: E402
import tiny_model  # noqa: E402

from core.catalog import MODELS  # noqa: E402
from core.engine import EngineOptions, build_command  # noqa: E402
from core.gateway import (  # noqa: E402
    GatewayConfig,
    auth_map_entry,
    generation_timeout_seconds,
    max_body_bytes,
    nginx_argv,
    render_nginx_conf,
)

NGINX = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
NOBODY = 65534


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-4000:] if log else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before {url} answered:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def production_argv() -> tuple[str, ...]:
    """The argv a target would run for the catalog model (one GPU, the defaults of core.settings)."""
    options = EngineOptions(
        engine="vllm",
        image="docker.io/vllm/vllm-openai:v0.32.0",
        served_model_name=subs.SERVED_NAME,
        max_model_len=32768,
        gpu_memory_utilization=0.9,
    )
    return build_command(options, MODELS[subs.MODEL], f"/models/{subs.MODEL}", 1, behind_gateway=True).argv


@dataclass
class Engine:
    process: subprocess.Popen
    port: int
    argv: list[str]
    log: Path
    model_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Gateway:
    process: subprocess.Popen
    config: GatewayConfig
    conf_path: Path
    log: Path
    as_nobody: bool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.listen_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config.metrics_port}"


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="llm-engine-suite-") as directory:
        os.chmod(directory, 0o755)  # nginx as nobody reads its conf and key file here
        yield Path(directory)


@pytest.fixture(scope="session")
def model_dir(workdir):
    return tiny_model.build(workdir / "model")


def start_engine(model_dir: Path, log: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> Engine:
    """`vllm serve` with the production argv, the CPU substitutions, and `extra` appended."""
    port = port or free_port()
    argv = subs.cpu_argv(production_argv(), str(model_dir), port) + list(extra)
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, **subs.ENV, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    handle = log.open("w")
    process = subprocess.Popen(
        [str(venv_bin / "vllm"), *argv[1:]], stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    engine = Engine(process, port, argv, log, model_dir)
    wait_for(f"{engine.url}/health", 300, process, log)
    return engine


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, seconds: float = 60) -> int:
    """Signal, wait, then SIGKILL; for an engine (its own session) also whatever is left of its
    process group (EngineCore and workers outlive the API server when it is killed)."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    if os.getpgid(0) != process.pid:
        kill_group(process.pid)
    return process.returncode


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_group(pgid: int) -> None:
    """SIGKILL the process group of an engine started here (start_new_session: pgid == its pid)."""
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture(scope="session")
def engine(model_dir, workdir):
    engine = start_engine(model_dir, workdir / "engine.log")
    yield engine
    stop(engine.process)


def gateway_config(workdir: Path, engine_port: int, name: str = "gateway", grace_seconds: int = 60) -> GatewayConfig:
    runtime = workdir / f"{name}-run"
    runtime.mkdir(exist_ok=True)
    os.chmod(runtime, 0o777)
    return GatewayConfig(
        listen_port=free_port(),
        engine_port=engine_port,
        metrics_port=free_port(),
        key_file=str(workdir / f"{name}-key.map"),
        read_timeout_seconds=generation_timeout_seconds(subs.MAX_MODEL_LEN),
        max_body_bytes=max_body_bytes(subs.MAX_MODEL_LEN),
        runtime_dir=str(runtime),
        graceful_shutdown_seconds=grace_seconds,
    )


def read_only_root(runtime_dir: str) -> list[str]:
    """An argv prefix: a private mount namespace where / is read-only and only runtime_dir (a new
    tmpfs) is writable, as in a pod with readOnlyRootFilesystem and an emptyDir. Needs root."""
    script = f'mount -o remount,bind,ro / && mount -t tmpfs -o mode=1777 tmpfs "{runtime_dir}" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


def start_gateway(
    workdir: Path,
    config: GatewayConfig,
    conf_text: str | None = None,
    name: str = "gateway",
    prefix: tuple[str, ...] = (),
    key_entry: str | None = auth_map_entry(subs.API_KEY),
) -> Gateway:
    """nginx with the rendered conf (or conf_text), as uid 65534 when the suite runs as root; key_entry None:
    the key file is written already."""
    conf = workdir / f"{name}.conf"
    conf.write_text(conf_text if conf_text is not None else render_nginx_conf(config))
    if key_entry is not None:
        Path(config.key_file).write_text(key_entry)
        os.chmod(config.key_file, 0o644)
    log = workdir / f"{name}.log"
    handle = log.open("w")
    argv = nginx_argv(str(conf), NGINX)
    as_nobody = os.geteuid() == 0
    if as_nobody:
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
        os.fchown(handle.fileno(), NOBODY, NOBODY)  # as a container runtime hands stdio to the user
    process = subprocess.Popen([*prefix, *argv], stdout=handle, stderr=subprocess.STDOUT)
    gateway = Gateway(process, config, conf, log, as_nobody)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", config.listen_port), timeout=1).close()
            return gateway
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("nginx did not listen")


@pytest.fixture(scope="session")
def gateway(engine, workdir):
    gateway = start_gateway(workdir, gateway_config(workdir, engine.port))
    yield gateway
    stop(gateway.process, signal.SIGQUIT, 30)


# --- The example stacks, as the program builds them (export_stacks.py) ---------------------------------------


VARIANTS_KEY = "__variants__"  # export_stacks.VARIANTS_KEY (that module needs the Pulumi SDKs, absent here)


def exported_stacks() -> dict:
    """What export_stacks.py wrote (./scripts/test.sh --engine runs it first and sets LLM_STACKS_JSON)."""
    path = os.environ.get("LLM_STACKS_JSON")
    if not path:
        raise RuntimeError(
            "LLM_STACKS_JSON is not set: run the suite with ./scripts/test.sh --engine, which exports the example "
            "stacks from the program (tests/engine/export_stacks.py) before it starts"
        )
    stacks = json.loads(Path(path).read_text())
    stacks.pop(VARIANTS_KEY, None)
    return stacks


def exported_variants() -> dict:
    """The configurations beyond the example stacks export_stacks.py exported (its VARIANTS), by name."""
    path = os.environ.get("LLM_STACKS_JSON")
    if not path:
        raise RuntimeError("LLM_STACKS_JSON is not set: run the suite with ./scripts/test.sh --engine")
    return json.loads(Path(path).read_text()).get(VARIANTS_KEY, {})


def _variant_key(stack: dict) -> str:
    """Two stacks that would run the same engine argv and environment behind the same gateway conf share a run."""
    engine = stack["engine"]
    env = {e["name"]: e.get("value", "<secret>") for e in engine.get("env") or []}
    argv = subs.stack_engine_argv(engine, "MODEL", 0)
    return json.dumps([argv, env, stack["nginx_conf"], stack["gateway"]["lifecycle"]], sort_keys=True)


def stack_variants() -> list[list[str]]:
    """The example stacks grouped by what would run (the first of each group is the one started)."""
    groups: dict[str, list[str]] = {}
    for name, stack in sorted(exported_stacks().items()):
        groups.setdefault(_variant_key(stack), []).append(name)
    return list(groups.values())


@dataclass
class ServedStack:
    names: list[str]  # every example stack that runs exactly this
    export: dict  # export_stacks.py's record of the first
    engine: Engine
    gateway: Gateway
    key: str  # the stack's API key (the mock's generated one, from its own Secret)

    @property
    def served_name(self) -> str:
        return self.export["outputs"]["servedModelName"]


def start_stack(export: dict, model_dir: Path, workdir: Path, name: str, max_model_len: int = subs.MAX_MODEL_LEN):
    """The stack's engine container and gateway container, as the pod would run them, on this machine."""
    secrets = export["secrets"]
    engine_port = free_port()
    argv = subs.stack_engine_argv(export["engine"], str(model_dir), engine_port, max_model_len)
    env = subs.stack_env(export["engine"], secrets)
    venv_bin = Path(sys.executable).parent
    log = workdir / f"{name}-engine.log"
    process = subprocess.Popen(
        [str(venv_bin / "vllm"), *argv[1:]],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **env, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"},
        start_new_session=True,
    )
    engine = Engine(process, engine_port, argv, log, model_dir)
    wait_for(f"{engine.url}/health", 300, process, log)

    run_dir = workdir / f"{name}-run"
    run_dir.mkdir(exist_ok=True)
    os.chmod(run_dir, 0o777)
    key_file = workdir / f"{name}-gateway-auth.conf"
    key_file.write_text(export["gateway_key_entry"])
    os.chmod(key_file, 0o644)
    api_port, metrics_port = free_port(), free_port()
    conf = subs.stack_conf(
        export["nginx_conf"], api_port, metrics_port, engine_port, str(key_file), str(run_dir), export["paths"]
    )
    config = GatewayConfig(
        listen_port=api_port,
        engine_port=engine_port,
        metrics_port=metrics_port,
        key_file=str(key_file),
        read_timeout_seconds=1,
        max_body_bytes=1,
        runtime_dir=str(run_dir),
    )
    gateway = start_gateway(workdir, config, conf, name=f"{name}-gateway", key_entry=None)
    return ServedStack([name], export, engine, gateway, export["api_key"])
