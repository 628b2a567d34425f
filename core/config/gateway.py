"""`gateway`: the authenticating gateway in front of the engine (core/gateway.py) — its image and extra routes.

There is no switch to turn the gateway off: the engine's own key check does not guard every path
(vllm-project/vllm#58144), so the engine listens on loopback on every target and the gateway is the only way in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core import gateway as gw
from core.config.engine import ANONYMOUS_PULL_FIX, Image, anonymous_pull_problem, pinned
from core.config.problems import Problems
from core.config.schema import Group, matches, option
from core.engine import INVOCATIONS_PATH, EngineOptions, invocations_unsafe
from core.versions import VLLM_IMAGE

RoutePath = Annotated[str, matches(r"/[A-Za-z0-9/_.-]{1,200}", "an absolute path of letters, digits, / _ . -")]
Reason = Annotated[str, matches(r"[^\r\n\x00]{10,300}", "a sentence of 10-300 characters on one line")]


class RouteConfig(Group):
    """One more engine path the gateway forwards, behind the API key like the default ones."""

    path: RoutePath = option(..., "The exact path, e.g. /v1/embeddings.", example="/v1/embeddings")
    method: Literal["GET", "POST"] = option("POST", "The one HTTP method allowed on it.")
    reason: Reason = option(
        ...,
        "Why clients need the path; it stays in the stack file for reviewers.",
        example="embeddings for the search index",
    )


class GatewayConfig(Group):
    """The gateway's image and the paths it forwards besides the default OpenAI routes."""

    image: Optional[Image] = option(
        None,
        "nginx image with a pinned tag or digest; empty: nginx from Docker Hub, or Alibaba Cloud Linux's nginx "
        "in mainland China (mirror the default into your own registry to pin it there).",
        example=gw.GATEWAY_IMAGE,
    )
    extra_routes: tuple[RouteConfig, ...] = option(
        (),
        "Engine paths to forward besides "
        + ", ".join(f"{m} {p}" for p, m in gw.DEFAULT_ROUTES)
        + ": each needs a reason and stays behind the API key.",
        example=[{"path": "/v1/embeddings", "method": "POST", "reason": "embeddings for the search index"}],
    )


@dataclass(frozen=True)
class Gateway:
    image: str  # pinned
    routes: tuple[tuple[str, str], ...]  # (path, method): the defaults, then the extra routes


# Paths the gateway answers itself, or that would reopen what it closes: never forwarded, with or without a key.
_NEVER = {
    gw.HEALTH_PATH: "the gateway answers it itself, for probes, without the key",
    gw.METRICS_PATH: "metrics are served on their own port for Prometheus only",
}


def check_routes_for_engine(config: GatewayConfig, engine: EngineOptions, problems: Problems) -> None:
    """The extra routes the engine's version cannot take safely: /invocations to vLLM before 0.14.1."""
    for index, route in enumerate(config.extra_routes):
        if route.path == INVOCATIONS_PATH and invocations_unsafe(engine):
            problems.add(
                f"gateway.extraRoutes[{index}].path",
                route.path,
                f"may not be forwarded to vLLM {engine.engine_version}: before 0.14.1 it runs a video-processing "
                "remote code execution through it, for anyone holding the key (docs/serving.md, Engine images)",
                f"{problems.set_command('engine.image', VLLM_IMAGE.value)} (or another vLLM 0.14.1 or newer that "
                f"your region can pull), or {problems.rm_command(f'gateway.extraRoutes[{index}]')}",
            )


def resolve_gateway(config: GatewayConfig, mainland_china: bool, problems: Problems) -> Optional[Gateway]:
    ok = True
    if config.image is not None and not pinned(config.image):
        problems.add(
            "gateway.image",
            config.image,
            "must carry a pinned tag or digest (not :latest, not untagged)",
            problems.set_command("gateway.image", gw.GATEWAY_IMAGE),
        )
        ok = False
    if config.image is not None and (why := anonymous_pull_problem(config.image)):
        problems.add("gateway.image", config.image, why, ANONYMOUS_PULL_FIX)
        ok = False
    seen = {path for path, _ in gw.DEFAULT_ROUTES}
    for index, route in enumerate(config.extra_routes):
        key = f"gateway.extraRoutes[{index}].path"
        fix = problems.rm_command(f"gateway.extraRoutes[{index}]")
        if route.path in _NEVER:
            problems.add(key, route.path, f"may not be forwarded: {_NEVER[route.path]}", fix)
            ok = False
        elif route.path in seen:
            problems.add(key, route.path, "is forwarded already (each path once, with one method)", fix)
            ok = False
        elif "//" in route.path or "/../" in route.path + "/" or "/./" in route.path + "/":
            problems.add(key, route.path, "must be a plain path (no //, /./ or /../)", fix)
            ok = False
        seen.add(route.path)
    if not ok:
        return None
    image = config.image or (gw.GATEWAY_IMAGE_CN if mainland_china else gw.GATEWAY_IMAGE)
    routes = (*gw.DEFAULT_ROUTES, *((r.path, r.method) for r in config.extra_routes))
    return Gateway(image=image, routes=routes)
