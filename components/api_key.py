"""The API key guarding the OpenAI-compatible API, as a Pulumi secret from end to end."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_random as random

from core.config.secret import SecretStr


class ApiKey(pulumi.ComponentResource):
    """The configured key, or a random 48-character one kept in the stack state (encrypted)."""

    value: pulumi.Output[str]

    def __init__(self, name: str, configured: Optional[SecretStr], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:common:ApiKey", name, None, opts)
        if configured is not None:
            self.value = pulumi.Output.secret(configured.reveal())
        else:
            generated = random.RandomPassword(
                f"{name}-generated", length=48, special=False, opts=pulumi.ResourceOptions(parent=self)
            )
            self.value = pulumi.Output.secret(generated.result)
        self.register_outputs({"value": self.value})
