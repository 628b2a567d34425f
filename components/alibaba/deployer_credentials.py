"""Who the dynamic providers' own Alibaba Cloud calls act as, from where Pulumi runs: api_server_acl's listener
binding, multipart_cleanup's aborts on destroy, prepared_image's wait for the build and the image's deletion.

The same identity as the alicloud provider: the stack's `alicloud:accessKey`/`secretKey`(/`securityToken`) or
`alicloud:profile` when it sets them (stacks pass them to each dynamic resource as a secret input, `stack_credentials`),
else the provider's environment variables (ALICLOUD_ACCESS_KEY, ...), else Alibaba's default credential chain
(alibabacloud_credentials: ALIBABA_CLOUD_* variables, ~/.aliyun/config.json's current profile, the ECS RAM role,
RRSA). `alicloud:assumeRole` is not applied (docs/security.md). Alibaba's own credential library rather than a
reader of our own: it knows every profile mode of the CLI's config (AK, StsToken, RamRoleArn, EcsRamRole, ...).

The functions are made inside `_functions()`, so dill pickles them by value into each provider that uses them: the
dynamic provider's process needs the alibabacloud_credentials package (the project's alibaba dependency group), not
this project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

# The alicloud provider's configuration keys that name its identity (alicloud:accessKey, ...).
PROVIDER_CREDENTIAL_KEYS = ("accessKey", "secretKey", "securityToken", "profile")


def stack_credentials(provider_config: Any) -> dict[str, Any]:
    """The identity keys the stack sets in the alicloud namespace (core.config.settings.ProviderConfig, or anything
    with its `get`), to be passed on as a secret."""
    return {k: provider_config.get(k) for k in PROVIDER_CREDENTIAL_KEYS if provider_config.get(k)}


def _functions():
    def credential_client(credentials: Mapping[str, Any]) -> Any:
        """An alibabacloud_credentials client for `credentials` (stack_credentials' keys), else the provider's
        environment variables, else the default chain."""
        import os

        from alibabacloud_credentials.client import Client as CredentialClient
        from alibabacloud_credentials.models import Config as CredentialConfig

        key = credentials.get("accessKey") or os.environ.get("ALICLOUD_ACCESS_KEY")
        secret = credentials.get("secretKey") or os.environ.get("ALICLOUD_SECRET_KEY")
        token = credentials.get("securityToken") or os.environ.get("ALICLOUD_SECURITY_TOKEN")
        if key and secret:
            if token:
                return CredentialClient(
                    CredentialConfig(type="sts", access_key_id=key, access_key_secret=secret, security_token=token)
                )
            return CredentialClient(CredentialConfig(type="access_key", access_key_id=key, access_key_secret=secret))
        if credentials.get("profile"):
            from alibabacloud_credentials.provider.cli_profile import CLIProfileCredentialsProvider

            return CredentialClient(provider=CLIProfileCredentialsProvider(profile_name=credentials["profile"]))
        return CredentialClient()

    def access_key(credentials: Optional[Mapping[str, Any]]) -> Optional[tuple[str, str, Optional[str]]]:
        """(AccessKey id, secret, security token or None) that credential_client resolves to, for the calls signed
        here (OSS, ECS); None when nothing in the chain has one."""
        import logging

        client = credential_client(credentials or {})
        chain = logging.getLogger("credentials")  # alibabacloud_credentials' logger, set up by its import
        level = chain.level
        chain.setLevel(logging.CRITICAL)  # each provider the chain tries logs its miss with a traceback
        try:
            found = client.get_credential()
        except Exception:
            return None
        finally:
            chain.setLevel(level)
        if not (found.access_key_id and found.access_key_secret):
            return None
        return found.access_key_id, found.access_key_secret, found.security_token or None

    return credential_client, access_key


credential_client, access_key = _functions()
