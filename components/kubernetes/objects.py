"""Small helpers for Kubernetes objects the components create."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s


def object_name(resource: k8s.apiextensions.CustomResource) -> pulumi.Output[str]:
    """A custom resource's metadata.name, as an output that depends on the resource.

    CustomResource exposes its fields dynamically (no typed `metadata` attribute), hence the cast.
    """
    return cast(Any, resource).metadata["name"]


def manifest(value: Mapping[str, Any]) -> Any:
    """A Kubernetes manifest fragment (camelCase, as in YAML) where the SDK types a snake_case *ArgsDict.

    Pod templates are written once in manifest form because a LeaderWorkerSet (a custom resource) takes
    them as they are, untranslated; pulumi-kubernetes accepts the same camelCase keys for its typed inputs.
    The tests validate every manifest strictly against the Kubernetes schemas (kubernetes-validate), which
    checks more than the static types would.
    """
    return value
