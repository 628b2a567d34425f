"""How to call the deployed model: stack outputs shared by every target.

The snippets read the key with `pulumi stack output apiKey --show-secrets` at the moment they run,
so no output other than apiKey (a secret) ever holds it.
"""

from __future__ import annotations

import json
from typing import Optional

import pulumi

KEY_COMMAND = "pulumi stack output apiKey --show-secrets"


def api_base(
    address: pulumi.Input[str], port: int, https: bool = False, hostname: Optional[str] = None
) -> pulumi.Output[str]:
    """The OpenAI base URL; https when TLS is on (then the certificate's host name, when one is known, since a
    certificate names a host, not the load balancer's address)."""
    host: pulumi.Input[str] = hostname if hostname else address
    return pulumi.Output.concat("https://" if https else "http://", host, f":{port}/v1")


def warn_plain_http(settings) -> None:
    """access.allowPlainHttp on a public endpoint: said on every update, since it sends the key in clear."""
    if settings.access.public and settings.tls is None:
        pulumi.log.warn(
            "access.allowPlainHttp: the public endpoint serves plain HTTP; the API key and every prompt and answer "
            "cross the internet unencrypted. Configure access.tls (docs/security.md)."
        )


def client_outputs(
    *,
    model_name: str,
    engine: str,
    api_key: pulumi.Output[str],
    private_base: pulumi.Output[str],
    public_base: Optional[pulumi.Output[str]],
) -> dict[str, object]:
    """apiKey (secret), URLs, served model name, a curl command, an OpenAI snippet and Chatbox settings."""
    base = public_base if public_base is not None else private_base
    outputs: dict[str, object] = {
        "apiKey": pulumi.Output.secret(api_key),  # type: ignore[arg-type]  # Output.secret takes an Output too
        "privateApiUrl": private_base,
        "publicApiUrl": public_base,
        "servedModelName": model_name,
        "curlCommand": base.apply(lambda url: curl_command(url, model_name)),
        "openaiSnippet": base.apply(lambda url: openai_snippet(url, model_name)),
        "chatboxSettings": base.apply(lambda url: chatbox_settings(url, model_name, engine)),
    }
    return outputs


def curl_command(base_url: str, model_name: str) -> str:
    body = json.dumps(
        {"model": model_name, "messages": [{"role": "user", "content": "Who are you?"}], "max_tokens": 512}
    )
    return (
        f'curl {base_url}/chat/completions -H "Authorization: Bearer $({KEY_COMMAND})" '
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


def openai_snippet(base_url: str, model_name: str) -> str:
    return "\n".join(
        [
            "import subprocess",
            "from openai import OpenAI",
            "",
            f"key = subprocess.run({KEY_COMMAND.split()!r}, capture_output=True, text=True, check=True).stdout.strip()",
            f"client = OpenAI(base_url={base_url!r}, api_key=key)",
            f"reply = client.chat.completions.create(model={model_name!r}, "
            "messages=[{'role': 'user', 'content': 'Who are you?'}])",
            "print(reply.choices[0].message.content)",
        ]
    )


def chatbox_settings(base_url: str, model_name: str, engine: str) -> dict[str, object]:
    """The Chatbox 'custom provider' form, field by field, as Compute Nest's ECS edition lists it."""
    return {
        "modelProvider": "Add custom provider",
        "name": {"vllm": "vLLM API", "sglang": "SGLang API"}[engine],
        "apiHost": base_url.removesuffix("/v1"),
        "apiPath": "/v1/chat/completions",
        "improveNetworkCompatibility": True,
        "apiKey": f"run: {KEY_COMMAND}",
        "model": model_name,
    }
