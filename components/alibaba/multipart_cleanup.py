"""Aborts a bucket's incomplete multipart uploads when `pulumi destroy` removes the bucket (audit D9).

OSS refuses DeleteBucket while parts remain ("Before you delete a bucket, you must delete all objects and
parts", help "Delete parts"), and the provider's `force_destroy` deletes objects only: it never calls
ListMultipartUploads/AbortMultipartUpload (TF resource_alicloud_oss_bucket.go:1734-1801). An import that
ossfs cut off mid-file leaves parts behind, and destroy then fails. The bucket's lifecycle rule aborts
parts only after a day (lifecycle runs about daily), too late for a destroy.

So a dynamic resource that depends on the bucket (and that the volumes writing into it depend on) does the
abort in its delete: on destroy it goes after the Jobs and volumes and before the bucket. It runs where
Pulumi runs, against the bucket's public endpoint, through Alibaba's OSS SDK (alibabacloud-oss-v2: OSS's V4
signature, which buckets created since 2025-09-01 require), as the alicloud provider's identity: the stack's
credentials (a secret input) or the provider's environment or Alibaba's default chain
(components/alibaba/deployer_credentials.py). Without any it warns and lets the bucket's deletion report any
part left; the manual fix is `ossutil rm oss://<bucket> -m -r -f` (docs/destroy.md). Not run against a live
account.

The provider's class is defined inside `_provider()` and carries everything it runs (the SDK calls, and
deployer_credentials' access_key, itself made inside a function) as its own static methods, so dill pickles all
of it by value; a module-level helper would be pickled by reference to this module, which the dynamic provider's
process need not be able to import. That process imports pulumi, the standard library and Alibaba's SDKs, not
this project (tests/test_multipart_cleanup.py loads the pickled provider in an isolated interpreter). The
module's `_credentials` and `abort_incomplete_uploads` are those static methods.
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
            # The region is a newer input: an older stack's state has only the endpoint, oss-<region>.aliyuncs.com.
            region = props.get("region") or props["endpoint"].split(".", 1)[0].removeprefix("oss-")
            aborted = self.abort_incomplete_uploads(props[marker], region, props["endpoint"], credentials)
            if aborted:
                pulumi.log.info(f"aborted {aborted} incomplete multipart upload(s) of {props[marker]}")

        # What it runs, here rather than at module level (the module's names below are these).
        credentials = staticmethod(access_key)

        @staticmethod
        def abort_incomplete_uploads(
            bucket: str,
            region: str,
            endpoint: str,
            credentials: tuple[str, str, Optional[str]],
            path_style: bool = False,
        ) -> int:
            """ListMultipartUploads (every page) and AbortMultipartUpload for each, through Alibaba's OSS SDK,
            which signs with OSS's V4 signature (it needs the region; OSS refuses V1 for buckets created since
            2025-09-01). Returns how many were aborted. `path_style` addresses the bucket in the path, for a
            loopback endpoint in tests."""
            import alibabacloud_oss_v2 as oss

            key_id, secret, token = credentials
            config = oss.config.load_default()
            config.credentials_provider = oss.credentials.StaticCredentialsProvider(key_id, secret, token)
            config.region = region
            config.endpoint = endpoint
            config.use_path_style = path_style
            client = oss.Client(config)
            aborted = 0
            pages = client.list_multipart_uploads_paginator().iter_page(oss.ListMultipartUploadsRequest(bucket=bucket))
            for page in pages:
                for upload in page.uploads or []:
                    if upload.key is None or upload.upload_id is None:
                        continue  # not an upload OSS could abort
                    client.abort_multipart_upload(
                        oss.AbortMultipartUploadRequest(bucket=bucket, key=upload.key, upload_id=upload.upload_id)
                    )
                    aborted += 1
            return aborted

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
            "region": region,
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
abort_incomplete_uploads = _helpers.abort_incomplete_uploads
