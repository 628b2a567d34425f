"""Streaming load (modelStore.load stream, docs/loading.md), run for real: the gke stack's engine argv as the program
builds it (--load-format runai_streamer, its --model-loader-extra-config), with the model argument an s3:// URI on an
S3 API served on loopback by moto, so vLLM 0.32.0's Run:ai Model Streamer lists the prefix, fetches config and
tokenizer, and streams the safetensors with ranged GETs, then serves.

The endpoint comes from AWS_ENDPOINT_URL, which the streamer documents as the override for S3-compatible stores
(run-ai/runai-model-streamer/docs/src/env-vars.md; vLLM's loader copies it to RUNAI_STREAMER_S3_ENDPOINT). Loopback
cannot serve virtual-hosted bucket names, so RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING=0 here; OSS would need the
default (1), as it refuses path-style requests. moto takes any key: the credentials are its test values, and say
nothing about RRSA or workload identity (which stay unverified here). The gs:// backend is not run: no GCS emulator
is on PyPI; the gke stack's own run (test_stacks.py) streams the same flags from the tiny model's directory.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import gateway_check as check
import pytest
import substitutions as subs
from conftest import exported_stacks, free_port, stop, wait_for

from core.engine import STREAM_TIME_LOG_LINE, STREAMER_LOG_LINE

BUCKET = "llm-models"
MOTO_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class _Requests(logging.Handler):
    """The S3 server's access log lines (werkzeug's), to see which requests the streamer made."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def s3(model_dir):
    import boto3
    from moto.server import ThreadedMotoServer

    requests = _Requests()
    logging.getLogger("werkzeug").addHandler(requests)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=MOTO_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=MOTO_KEYS["AWS_SECRET_ACCESS_KEY"],
        region_name=MOTO_KEYS["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=BUCKET)
    # The layout the gke stack streams from: <bucket>/models/<model dir>/ (the tiny model's files).
    prefix = "models/" + streamed_uri(gke()).split("/models/", 1)[1]
    for path in Path(model_dir).iterdir():
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.name}")
    yield endpoint, f"s3://{BUCKET}/{prefix}", requests
    server.stop()
    logging.getLogger("werkzeug").removeHandler(requests)


def gke() -> dict:
    return exported_stacks()["gke"]


def streamed_uri(export: dict) -> str:
    """The URI the engine container streams from: its LLM_MODEL_URI (gs://<bucket>/models/<model dir>)."""
    uri = {e["name"]: e.get("value") for e in export["engine"]["env"]}["LLM_MODEL_URI"]
    assert uri.startswith("gs://") and "/models/" in uri
    return uri


def start(export: dict, model: str, endpoint: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    argv = subs.stack_engine_argv(export["engine"], model, port)
    env = {
        **subs.stack_env(export["engine"], export["secrets"]),
        **MOTO_KEYS,
        "AWS_ENDPOINT_URL": endpoint,
        "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "0",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    venv_bin = Path(sys.executable).parent
    process = subprocess.Popen(
        [str(venv_bin / "vllm"), *argv[1:]],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **env, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"},
        start_new_session=True,
    )
    return process, port


def test_the_gke_stack_streams_its_model_from_the_bucket_with_the_run_ai_loader():
    export = gke()
    argv = export["engine"]["command"]
    assert argv[2] == "$(LLM_MODEL_URI)" and streamed_uri(export)
    assert argv[argv.index("--load-format") + 1] == "runai_streamer"
    assert "--model-loader-extra-config" in argv


def test_the_stacks_streaming_argv_serves_a_model_streamed_from_s3(s3, workdir):
    endpoint, uri, requests = s3
    log = workdir / "stream-s3-engine.log"
    process, port = start(gke(), uri, endpoint, log)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 300, process, log)
        status, body, _ = check.request(
            "POST",
            f"http://127.0.0.1:{port}/v1/completions",
            subs.stack_env(gke()["engine"], gke()["secrets"])["VLLM_API_KEY"],
            {"model": gke()["outputs"]["servedModelName"], "prompt": "Let", "max_tokens": 8},
        )
        assert status == 200, body[:300]
        assert "Hello world" in body.decode()
    finally:
        stop(process)
    text = log.read_text()
    assert f"{STREAMER_LOG_LINE}: 100%" in text  # the progress docs/loading.md points at
    timed = [line for line in text.splitlines() if "RunAI Streamer" in line or "took" in line]
    assert re.search(rf"{re.escape(STREAM_TIME_LOG_LINE)} .*: [\d.]+s, ", text), timed  # NIC_MB_PER_S's rate
    shard = [line for line in requests.lines if "model.safetensors" in line and "GET" in line]
    assert shard and all('" 206 ' in line for line in shard), shard[:3]  # ranged reads of the shard
    assert any("list-type=2" in line for line in requests.lines)  # ListObjectsV2, as OSS supports it


def test_a_prefix_without_weights_stops_the_engine_instead_of_serving(s3, workdir):
    """The same start against an empty prefix fails: the run above did read the bucket."""
    endpoint, uri, _ = s3
    log = workdir / "stream-s3-missing.log"
    process, _ = start(gke(), uri.rsplit("/", 1)[0] + "/not-there", endpoint, log)
    try:
        assert process.wait(timeout=300) != 0
    finally:
        stop(process)
