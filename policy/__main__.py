"""Entry point the Pulumi CLI runs for `--policy-pack policy`: serve the guardrail policies."""

from llm_policies import ALL_POLICIES
from pulumi_policy import PolicyPack

PolicyPack(
    name="llm-guardrails",
    policies=ALL_POLICIES,
    description="Guardrails for the llm inference stacks: exposure, secrets, images, GPUs, buckets.",
)
