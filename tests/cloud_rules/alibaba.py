"""Alibaba Cloud rules the provider does not check (sources: the API references and provider source cited)."""

from __future__ import annotations

from cloud_rules import Candidate, known, rule


def _unwrap(value):
    from harness import unwrap

    return unwrap(value)


@rule(
    "alicloud:oos/secretParameter:SecretParameter",
    source="CreateSecretParameter API, help.aliyun.com/zh/oos/developer-reference/api-oos-2019-06-01-"
    "createsecretparameter (Value: 1-4096 characters); pulumi_alicloud oos/secret_parameter.py docstring",
)
def secret_parameter_value_fits(candidate: Candidate, run) -> str | None:
    value = _unwrap(candidate.inputs.get("value"))
    if known(value) and isinstance(value, str) and not 1 <= len(value) <= 4096:
        return f"an encrypted parameter's value must be 1-4096 characters; this one is {len(value)}"
    return None
