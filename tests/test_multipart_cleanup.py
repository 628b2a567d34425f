"""Destroy aborts a bucket's incomplete multipart uploads before the bucket goes (audit D9)."""

import base64
import hashlib
import hmac
import json

import cloud_rules
import pytest
from harness import is_secret, run_program, run_provider_isolated, run_stack, unwrap

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


def test_the_provider_is_pickled_by_value_and_acts_as_the_stacks_identity_else_the_cli_profile(tmp_path):
    home = tmp_path / "home"
    (home / ".aliyun").mkdir(parents=True)
    profile = {"name": "ci", "mode": "StsToken", "access_key_id": "P-AK", "access_key_secret": "P-SK", "sts_token": "T"}
    (home / ".aliyun" / "config.json").write_text(json.dumps({"current": "", "profiles": [profile]}))
    listing = page([("m/a b", "U1")]).decode()
    script = (
        "state = {'abortsMultipartUploadsOf': 'bkt', 'endpoint': 'oss-x.aliyuncs.com'}\n"
        "p.delete('abort-uploads-bkt', state)\n"  # the state of an older stack: no credentials, none current
        "named = p.credentials({'profile': 'ci'})\n"
        "stack = p.credentials({'accessKey': 'S-AK', 'secretKey': 'S-SK'})\n"
        "sent = []\n"
        "def send(method, url, headers):\n"
        "    sent.append([method, url, headers])\n"
        f"    return {listing!r}.encode() if method == 'GET' else b''\n"
        "aborted = p.abort_incomplete_uploads('bkt', 'oss-cn-hangzhou.aliyuncs.com', named, send)\n"
        "print(json.dumps([type(p).__name__, named, stack, aborted, sent]))\n"
    )
    done, _ = run_provider_isolated(cleanup._provider(), script, tmp_path, without_alibaba_credentials=True, home=home)
    assert done.returncode == 0, done.stderr
    assert "incomplete uploads of bkt were not aborted" in done.stderr  # delete without credentials only warns
    name, named, stack, aborted, sent = json.loads(done.stdout)
    assert (name, named, stack, aborted) == ("AbortMultipartUploads", ["P-AK", "P-SK", "T"], ["S-AK", "S-SK", None], 1)
    (_, listed, _), (verb, url, headers) = sent
    assert listed == "https://bkt.oss-cn-hangzhou.aliyuncs.com/?uploads"
    assert (verb, url) == ("DELETE", "https://bkt.oss-cn-hangzhou.aliyuncs.com/m/a%20b?uploadId=U1")
    text = f"DELETE\n\n\n{headers['Date']}\nx-oss-security-token:T\n/bkt/m/a b?uploadId=U1"
    expected = base64.b64encode(hmac.new(b"P-SK", text.encode(), hashlib.sha1).digest()).decode()
    assert headers["Authorization"] == f"OSS P-AK:{expected}"


def test_the_stacks_credentials_reach_the_cleanup_as_a_secret_and_a_new_identity_is_an_update_in_place():
    run = run_stack(
        "acs",
        {"alicloud:accessKey": "LTAI-STACK-KEY", "alicloud:secretKey": "STACK-SECRET"},
    )
    aborter = next(r for r in run.resources if "abort-uploads" in r.name)
    assert is_secret(aborter.inputs["credentials"])
    assert unwrap(aborter.inputs["credentials"]) == {"accessKey": "LTAI-STACK-KEY", "secretKey": "STACK-SECRET"}
    provider = cleanup._provider()
    old = {"abortsMultipartUploadsOf": "bkt", "endpoint": "e", "credentials": {"accessKey": "old"}}
    rotated = provider.diff("id", old, {**old, "credentials": {"accessKey": "new"}})
    assert rotated.changes and not rotated.replaces
    assert provider.diff("id", old, {**old, "abortsMultipartUploadsOf": "other"}).replaces == [
        "abortsMultipartUploadsOf"
    ]
    assert provider.update("id", old, {**old, "credentials": {"accessKey": "new"}}).outs["credentials"] == {
        "accessKey": "new"
    }


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
