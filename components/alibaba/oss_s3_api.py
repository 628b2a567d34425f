"""What the Run:ai Model Streamer needs to read OSS through its S3-compatible API, shared by the Kubernetes targets
(components/alibaba/oss_stream_access.py: pods, RRSA) and the ecs host (components/alibaba/host_scripts.py: the
engine container, the instance RAM role). No cloud SDK is imported here: ecs installs no Kubernetes SDK.

OSS speaks S3 on its own endpoints: `https://s3.oss-<region>-internal.aliyuncs.com` from the region's VPCs,
virtual-hosted style only, path style refused (alibabacloud.com/help/en/oss/developer-reference/use-aws-sdks-to-
access-oss; .../compatibility-with-amazon-s3, "Request style"); its AWS SDK examples sign for the region id, e.g.
cn-hangzhou. It takes STS temporary credentials as x-amz-security-token (OSS error 0002-00000009). That the
combination (SigV4 with an STS token, from the AWS SDK for C++) is accepted was not run against OSS here.
"""

from __future__ import annotations

from pathlib import Path

CREDENTIAL_SCRIPT = Path(__file__).parent.parent / "scripts" / "rrsa-credential-process.py"
SCRIPT_ITEM = "rrsa-credential-process.py"
CONFIG_ITEM = "aws-config"


def s3_endpoint(region: str) -> str:
    """OSS's S3-compatible internal endpoint (use-aws-sdks-to-access-oss: https://s3.oss-{region}-internal...)."""
    return f"https://s3.oss-{region}-internal.aliyuncs.com"


def aws_config(region: str, config_dir: str, source: str = "") -> str:
    """The AWS config file both S3 clients read (AWS_CONFIG_FILE): the credential process (`source`: its
    `--source`, "" for its default, rrsa), the signing region, virtual-hosted addressing (boto3's
    `s3.addressing_style`; the C++ client reads RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING), and checksums only when an
    operation requires them (the AWS SDKs' `request_checksum_calculation` / `response_checksum_validation`: the newer
    defaults add checksum headers that S3-compatible stores may not know; whether OSS needs this was not checked)."""
    command = f"python3 {config_dir}/{SCRIPT_ITEM}" + (f" --source {source}" if source else "")
    return (
        "[default]\n"
        f"credential_process = {command}\n"
        f"region = {region}\n"
        "s3 =\n"
        "    addressing_style = virtual\n"
        "request_checksum_calculation = when_required\n"
        "response_checksum_validation = when_required\n"
    )


def stream_env(region: str, config_dir: str) -> dict[str, str]:
    """The engine's environment for the streamer's S3 clients: the config file above, OSS's endpoint and region,
    virtual addressing, and no AWS metadata lookup (only the credential process supplies credentials)."""
    return {
        "AWS_CONFIG_FILE": f"{config_dir}/{CONFIG_ITEM}",
        "AWS_ENDPOINT_URL": s3_endpoint(region),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "1",
        # boto3's chain would otherwise try the EC2 IMDS (169.254.169.254), which is not Alibaba's metadata server.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
