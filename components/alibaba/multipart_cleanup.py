"""Aborts a bucket's incomplete multipart uploads when `pulumi destroy` removes the bucket (audit D9).

OSS refuses DeleteBucket while parts remain ("Before you delete a bucket, you must delete all objects and
parts", help "Delete parts"), and the provider's `force_destroy` deletes objects only: it never calls
ListMultipartUploads/AbortMultipartUpload (TF resource_alicloud_oss_bucket.go:1734-1801). An import that
ossfs cut off mid-file leaves parts behind, and destroy then fails. The bucket's lifecycle rule aborts
parts only after a day (lifecycle runs about daily), too late for a destroy.

So a dynamic resource that depends on the bucket (and that the volumes writing into it depend on) does the
abort in its delete: on destroy it goes after the Jobs and volumes and before the bucket. It runs where
Pulumi runs, against the bucket's public endpoint, as the alicloud provider's identity: the stack's credentials
(a secret input) or the provider's environment or Alibaba's default chain (components/alibaba/deployer_credentials.py).
Without any it warns and lets the bucket's deletion report any part left; the manual fix is
`ossutil rm oss://<bucket> -m -r -f` (docs/destroy.md). Not run against a live account.

The provider's class is defined inside `_provider()` and carries everything it runs (signing, the HTTP calls, and
deployer_credentials' access_key, itself made inside a function) as its own static methods, so dill pickles all
of it by value; a module-level helper would be pickled by reference to this module, which the dynamic provider's
process need not be able to import. That process imports pulumi, the standard library and
alibabacloud_credentials, not this project (tests/test_multipart_cleanup.py loads the pickled provider in an
isolated interpreter). The module's `_credentials`, `sign` and `abort_incomplete_uploads` are those static
methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import pulumi
import pulumi.dynamic as dynamic

from components.alibaba.deployer_credentials import access_key

MARKER = "abortsMultipartUploadsOf"  # the input naming the bucket (tests/cloud_rules looks for it)


def _provider():
    """The provider; nothing it runs may live at module level (the module docstring says why)."""
    marker = MARKER

    class AbortMultipartUploads(dynamic.ResourceProvider):
        def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
            return dynamic.CreateResult(id_=f"abort-uploads-{props[marker]}", outs=props)

        def diff(self, id: str, old: dict[str, Any], new: dict[str, Any]) -> dynamic.DiffResult:
            # A new identity (rotated keys, another profile) is taken in place, so that destroy uses it.
            replaces = [k for k in (marker, "endpoint") if old.get(k) != new.get(k)]
            return dynamic.DiffResult(changes=bool(replaces) or old != new, replaces=replaces)

        def update(self, id: str, old: dict[str, Any], new: dict[str, Any]) -> dynamic.UpdateResult:
            return dynamic.UpdateResult(outs=new)

        def delete(self, id: str, props: dict[str, Any]) -> None:
            credentials = self.credentials(props.get("credentials"))  # none in the state of an older stack
            if credentials is None:
                pulumi.log.warn(
                    f"no Alibaba Cloud credentials (the stack's alicloud keys, ALICLOUD_* or the default chain): "
                    f"incomplete uploads of {props[marker]} were not aborted; if deleting the bucket fails, run: "
                    f"ossutil rm oss://{props[marker]} -m -r -f"
                )
                return
            aborted = self.abort_incomplete_uploads(props[marker], props["endpoint"], credentials)
            if aborted:
                pulumi.log.info(f"aborted {aborted} incomplete multipart upload(s) of {props[marker]}")

        # What it runs, here rather than at module level (the module's names below are these).
        credentials = staticmethod(access_key)

        @staticmethod
        def sign(secret: str, verb: str, date: str, resource: str, oss_headers: dict[str, str]) -> str:
            """OSS header signature V1: base64(HMAC-SHA1(secret, VERB\\nContent-MD5\\nContent-Type\\nDate\\n
            CanonicalizedOSSHeaders + CanonicalizedResource)) (OSS API reference, "Include a signature in the
            Authorization header")."""
            import base64
            import hashlib
            import hmac

            headers = "".join(f"{k.lower()}:{v}\n" for k, v in sorted(oss_headers.items()))
            text = f"{verb}\n\n\n{date}\n{headers}{resource}"
            return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()

        @staticmethod
        def abort_incomplete_uploads(
            bucket: str, endpoint: str, credentials: tuple[str, str, Optional[str]], send: Any = None
        ) -> int:
            """ListMultipartUploads (GET /?uploads, paged by key-marker/upload-id-marker) and AbortMultipartUpload
            (DELETE /<key>?uploadId=) for each; returns how many were aborted. `send(method, url, headers)` -> body
            bytes replaces the HTTP call in tests."""
            import email.utils
            import urllib.parse
            import urllib.request
            import xml.etree.ElementTree as ET

            key_id, secret, token = credentials

            def request(method: str, path: str, sub: str, query: str) -> bytes:
                date = email.utils.formatdate(usegmt=True)
                oss_headers = {"x-oss-security-token": token} if token else {}
                signature = AbortMultipartUploads.sign(secret, method, date, f"/{bucket}{path}{sub}", oss_headers)
                headers = {"Date": date, **oss_headers, "Authorization": f"OSS {key_id}:{signature}"}
                url = f"https://{bucket}.{endpoint}{urllib.parse.quote(path)}{sub}{query}"
                if send is not None:
                    return send(method, url, headers)
                with urllib.request.urlopen(
                    urllib.request.Request(url, method=method, headers=headers), timeout=60
                ) as r:
                    return r.read()

            aborted, key_marker, id_marker = 0, "", ""
            while True:
                query = "&" + urllib.parse.urlencode({"key-marker": key_marker, "upload-id-marker": id_marker})
                root = ET.fromstring(request("GET", "/", "?uploads", query if key_marker else ""))
                ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
                for upload in root.findall(f"{ns}Upload"):
                    key, upload_id = upload.findtext(f"{ns}Key") or "", upload.findtext(f"{ns}UploadId") or ""
                    request("DELETE", f"/{key}", f"?uploadId={upload_id}", "")
                    aborted += 1
                if (root.findtext(f"{ns}IsTruncated") or "false").lower() != "true":
                    return aborted
                key_marker = root.findtext(f"{ns}NextKeyMarker") or ""
                id_marker = root.findtext(f"{ns}NextUploadIdMarker") or ""

    return AbortMultipartUploads()


class MultipartCleanup(dynamic.Resource):
    def __init__(
        self,
        name: str,
        bucket: pulumi.Input[str],
        region: str,
        credentials: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ):
        props = {
            MARKER: bucket,
            "endpoint": public_endpoint(region),
            "credentials": pulumi.Output.secret(dict(credentials)),
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["credentials"]))
        super().__init__(_provider(), name, props, opts)


def public_endpoint(region: str) -> str:
    return f"oss-{region}.aliyuncs.com"


# The provider's own helpers under the module's names (the tests and prepared_image call them).
_helpers = _provider()
_credentials = _helpers.credentials
sign = _helpers.sign
abort_incomplete_uploads = _helpers.abort_incomplete_uploads
