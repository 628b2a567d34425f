"""Destroy aborts a bucket's incomplete multipart uploads before the bucket goes (audit D9)."""

import json
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import cloud_rules
import pytest
from harness import is_secret, run_program, run_provider_isolated, run_stack, serve_on_loopback, unwrap

from components.alibaba import multipart_cleanup as cleanup


def page(uploads, truncated=False, next_key="", next_id="", encoding=""):
    items = "".join(f"<Upload><Key>{k}</Key><UploadId>{u}</UploadId></Upload>" for k, u in uploads)
    return (
        f"<ListMultipartUploadsResult><EncodingType>{encoding}</EncodingType>"
        f"<IsTruncated>{str(truncated).lower()}</IsTruncated>"
        f"<NextKeyMarker>{next_key}</NextKeyMarker><NextUploadIdMarker>{next_id}</NextUploadIdMarker>"
        f"{items}</ListMultipartUploadsResult>"
    ).encode()


class FakeOss(BaseHTTPRequestHandler):
    """One bucket's multipart uploads on loopback, addressed in the path (/bkt?uploads, /bkt/<key>?uploadId=):
    pages of two at most, paged by key-marker/upload-id-marker; records (method, path, query, headers)."""

    uploads: ClassVar[list[tuple[str, str]]] = []
    seen: ClassVar[list[tuple[str, str, dict[str, str], dict[str, str]]]] = []

    def _record(self) -> dict[str, str]:
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self.seen.append(
            (self.command, urllib.parse.unquote(url.path), query, {k.lower(): v for k, v in self.headers.items()})
        )
        return query

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("content-type", "application/xml")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        query = self._record()
        after = (query.get("key-marker", ""), query.get("upload-id-marker", ""))
        rest = [u for u in sorted(self.uploads) if u > after] if after != ("", "") else sorted(self.uploads)
        shown, more = rest[:2], len(rest) > 2
        last = shown[-1] if more else ("", "")
        encoding = query.get("encoding-type", "")
        if encoding == "url":  # as OSS does when asked (the SDK asks, and decodes what it says was encoded)
            shown = [(urllib.parse.quote(k), u) for k, u in shown]
            last = (urllib.parse.quote(last[0]), last[1])
        self._answer(200, page(shown, more, *last, encoding=encoding))

    def do_DELETE(self):
        query = self._record()
        key = urllib.parse.unquote(urllib.parse.urlparse(self.path).path).split("/", 2)[2]
        self.uploads.remove((key, query["uploadId"]))
        self._answer(204)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_oss():
    FakeOss.seen = []
    FakeOss.uploads = [("models/a b.safetensors", "U1"), ("m/c", "U2"), ("m/c", "U3")]
    server, url = serve_on_loopback(FakeOss)
    yield url
    server.shutdown()


def test_every_incomplete_upload_of_every_page_is_aborted_through_the_sdk_signed_with_v4(fake_oss):
    assert cleanup.abort_incomplete_uploads("bkt", "cn-hangzhou", fake_oss, ("AK", "SECRET", "TOK"), True) == 3
    assert FakeOss.uploads == []
    listed = [(q.get("key-marker"), q.get("upload-id-marker")) for m, _, q, _ in FakeOss.seen if m == "GET"]
    assert listed[0] in ((None, None), ("", "")) and listed[1:] == [("m/c", "U3")]  # the second page after the first
    aborted = [(path, q["uploadId"]) for m, path, q, _ in FakeOss.seen if m == "DELETE"]
    assert sorted(aborted) == [("/bkt/m/c", "U2"), ("/bkt/m/c", "U3"), ("/bkt/models/a b.safetensors", "U1")]
    for _, _, _, headers in FakeOss.seen:
        assert re.fullmatch(
            r"OSS4-HMAC-SHA256 Credential=AK/\d{8}/cn-hangzhou/oss/aliyun_v4_request,.*", headers["authorization"]
        )
        assert headers["x-oss-security-token"] == "TOK"


def test_the_provider_is_pickled_by_value_and_acts_as_the_stacks_identity_else_the_cli_profile(tmp_path, fake_oss):
    home = tmp_path / "home"
    (home / ".aliyun").mkdir(parents=True)
    profile = {"name": "ci", "mode": "StsToken", "access_key_id": "P-AK", "access_key_secret": "P-SK", "sts_token": "T"}
    (home / ".aliyun" / "config.json").write_text(json.dumps({"current": "", "profiles": [profile]}))
    script = (
        "state = {'abortsMultipartUploadsOf': 'bkt', 'endpoint': 'oss-x.aliyuncs.com'}\n"
        "p.delete('abort-uploads-bkt', state)\n"  # the state of an older stack: no credentials, none current
        "named = p.credentials({'profile': 'ci'})\n"
        "stack = p.credentials({'accessKey': 'S-AK', 'secretKey': 'S-SK'})\n"
        f"aborted = p.abort_incomplete_uploads('bkt', 'cn-hangzhou', {fake_oss!r}, named, True)\n"
        "print(json.dumps([type(p).__name__, named, stack, aborted]))\n"
    )
    done, _ = run_provider_isolated(cleanup._provider(), script, tmp_path, without_alibaba_credentials=True, home=home)
    assert done.returncode == 0, done.stderr
    assert "incomplete uploads of bkt were not aborted" in done.stderr  # delete without credentials only warns
    name, named, stack, aborted = json.loads(done.stdout)
    assert (name, named, stack, aborted) == ("AbortMultipartUploads", ["P-AK", "P-SK", "T"], ["S-AK", "S-SK", None], 3)
    assert all(h["authorization"].startswith("OSS4-HMAC-SHA256 Credential=P-AK/") for *_, h in FakeOss.seen)


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
