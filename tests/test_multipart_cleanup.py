"""Destroy aborts a bucket's incomplete multipart uploads before the bucket goes (audit D9)."""

import base64
import hashlib
import hmac
import json

import cloud_rules
import pytest
from harness import run_program, run_provider_isolated, run_stack

from components.alibaba import multipart_cleanup as cleanup

NS = "http://doc.oss-cn-hangzhou.aliyuncs.com"


def page(uploads, truncated=False, next_key="", next_id=""):
    items = "".join(f"<Upload><Key>{k}</Key><UploadId>{u}</UploadId></Upload>" for k, u in uploads)
    return (
        f'<ListMultipartUploadsResult xmlns="{NS}"><IsTruncated>{str(truncated).lower()}</IsTruncated>'
        f"<NextKeyMarker>{next_key}</NextKeyMarker><NextUploadIdMarker>{next_id}</NextUploadIdMarker>"
        f"{items}</ListMultipartUploadsResult>"
    ).encode()


def test_every_incomplete_upload_of_every_page_is_aborted_with_a_signed_request():
    calls = []
    pages = [page([("models/a b.safetensors", "U1")], True, "models/a b.safetensors", "U1"), page([("m/c", "U2")])]

    def send(method, url, headers):
        calls.append((method, url, headers))
        return pages.pop(0) if method == "GET" else b""

    assert cleanup.abort_incomplete_uploads("bkt", "oss-cn-hangzhou.aliyuncs.com", ("AK", "SECRET", "TOK"), send) == 2
    methods_urls = [(m, u) for m, u, _ in calls]
    assert methods_urls == [
        ("GET", "https://bkt.oss-cn-hangzhou.aliyuncs.com/?uploads"),
        ("DELETE", "https://bkt.oss-cn-hangzhou.aliyuncs.com/models/a%20b.safetensors?uploadId=U1"),
        (
            "GET",
            "https://bkt.oss-cn-hangzhou.aliyuncs.com/?uploads&key-marker=models%2Fa+b.safetensors&upload-id-marker=U1",
        ),
        ("DELETE", "https://bkt.oss-cn-hangzhou.aliyuncs.com/m/c?uploadId=U2"),
    ]
    _, _, headers = calls[1]
    text = f"DELETE\n\n\n{headers['Date']}\nx-oss-security-token:TOK\n/bkt/models/a b.safetensors?uploadId=U1"
    expected = base64.b64encode(hmac.new(b"SECRET", text.encode(), hashlib.sha1).digest()).decode()
    assert headers["Authorization"] == f"OSS AK:{expected}" and headers["x-oss-security-token"] == "TOK"


def test_credentials_come_from_the_environment_or_the_cli_profile(monkeypatch, tmp_path):
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cleanup._credentials() is None
    (tmp_path / ".aliyun").mkdir()
    profile = {"name": "default", "mode": "AK", "access_key_id": "P-AK", "access_key_secret": "P-SK"}
    (tmp_path / ".aliyun" / "config.json").write_text(json.dumps({"current": "default", "profiles": [profile]}))
    assert cleanup._credentials() == ("P-AK", "P-SK", None)
    monkeypatch.setenv("ALICLOUD_ACCESS_KEY", "E-AK")
    monkeypatch.setenv("ALICLOUD_SECRET_KEY", "E-SK")
    assert cleanup._credentials() == ("E-AK", "E-SK", None)


def test_the_provider_is_pickled_by_value_so_its_process_needs_only_the_stdlib_and_pulumi(tmp_path):
    empty, home = tmp_path / "empty", tmp_path / "home"
    empty.mkdir()
    (home / ".aliyun").mkdir(parents=True)
    profile = {"name": "ci", "mode": "StsToken", "access_key_id": "P-AK", "access_key_secret": "P-SK", "sts_token": "T"}
    (home / ".aliyun" / "config.json").write_text(json.dumps({"current": "ci", "profiles": [profile]}))
    listing = page([("m/a b", "U1")]).decode()
    script = (
        f"os.environ['HOME'] = {str(empty)!r}\n"
        "p.delete('abort-uploads-bkt', {'abortsMultipartUploadsOf': 'bkt', 'endpoint': 'oss-x.aliyuncs.com'})\n"
        f"os.environ['HOME'] = {str(home)!r}\n"
        "credentials = p.credentials()\n"
        "sent = []\n"
        "def send(method, url, headers):\n"
        "    sent.append([method, url, headers])\n"
        f"    return {listing!r}.encode() if method == 'GET' else b''\n"
        "aborted = p.abort_incomplete_uploads('bkt', 'oss-cn-hangzhou.aliyuncs.com', credentials, send)\n"
        "print(json.dumps([type(p).__name__, credentials, aborted, sent]))\n"
    )
    done, _ = run_provider_isolated(cleanup._provider(), script, tmp_path, without_alibaba_credentials=True)
    assert done.returncode == 0, done.stderr
    assert "incomplete uploads of bkt were not aborted" in done.stderr  # delete without credentials only warns
    name, credentials, aborted, sent = json.loads(done.stdout)
    assert (name, credentials, aborted) == ("AbortMultipartUploads", ["P-AK", "P-SK", "T"], 1)
    (_, listed, _), (verb, url, headers) = sent
    assert listed == "https://bkt.oss-cn-hangzhou.aliyuncs.com/?uploads"
    assert (verb, url) == ("DELETE", "https://bkt.oss-cn-hangzhou.aliyuncs.com/m/a%20b?uploadId=U1")
    text = f"DELETE\n\n\n{headers['Date']}\nx-oss-security-token:T\n/bkt/m/a b?uploadId=U1"
    expected = base64.b64encode(hmac.new(b"P-SK", text.encode(), hashlib.sha1).digest()).decode()
    assert headers["Authorization"] == f"OSS P-AK:{expected}"


def test_the_bucket_is_destroyed_after_the_cleanup_and_the_volumes_before_it():
    run = run_stack("acs")
    bucket = run.one("alicloud:oss/bucket:Bucket")
    aborter = next(r for r in run.resources if "abort-uploads" in r.name)
    assert bucket.urn in aborter.dependencies
    for volume in run.of_type("kubernetes:core/v1:PersistentVolume"):
        assert aborter.urn in volume.dependencies, volume.name
    assert not [r for r in run_stack("acs-r1").resources if "abort-uploads" in r.name]  # a kept bucket stays whole


def test_a_destroyed_bucket_without_a_cleanup_is_refused():
    def program():
        import pulumi_alicloud as alicloud

        alicloud.oss.Bucket("models", bucket="models-1", force_destroy=True)

    with pytest.raises(cloud_rules.CloudRefusal, match="nothing aborts its incomplete multipart uploads"):
        run_program(program)
