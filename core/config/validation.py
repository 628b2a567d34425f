"""Raw config values checked against the schema: types and rules (pydantic), unknown keys (with the nearest valid
key), keys that do not apply to the chosen target, and secrets stored in plaintext.

Each top-level key is validated on its own, so a mistake in one group does not hide the mistakes in the others;
a group that fails is left out (None) and the rules that span groups skip it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Optional, cast, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from core.config.problems import MASK, Problems, nearest
from core.config.root import SECRET_KEYS, StackConfig
from core.config.schema import EXAMPLE_KEY, TARGETS_KEY, Group
from core.targets import ALL_TARGETS

# The flat keys of earlier versions, so a stack file written for them gets told where each key went.
MOVED = {
    "region": "alicloud:region (Alibaba targets) or gcp:region (gke)",
    "zone": "placement.zone (ecs) or gcp:zone (gke)",
    "gcpProject": "gcp:project",
    "kubeconfig": "kubernetes:kubeconfig",
    "customModel": "model.custom",
    "modelRevision": "model.revision",
    "servedModelName": "model.servedName",
    "engineImage": "engine.image",
    "maxModelLen": "engine.maxModelLen",
    "gpuMemoryUtilization": "engine.gpuMemoryUtilization",
    "maxNumSeqs": "engine.maxNumSeqs",
    "extraEngineArgs": "engine.extraArgs",
    "apiPort": "access.apiPort",
    "instanceType": "placement.instanceType",
    "gpuKind": "placement.gpuKind",
    "gpuCount": "placement.gpuCount",
    "podsPerReplica": "placement.podsPerReplica",
    "replicas": "scaling.replicas",
    "maxReplicas": "scaling.maxReplicas",
    "cpuPerPod": "workload.cpuPerPod",
    "memoryGibPerPod": "workload.memoryGibPerPod",
    "shmGib": "workload.shmGib",
    "namespace": "workload.namespace",
    "publicAccess": "access.public",
    "allowedCidrs": "access.allowedCidrs",
    "publicBandwidthMbps": "access.publicBandwidthMbps",
    "sshCidrs": "access.sshCidrs",
    "sshKeyPair": "access.sshKeyPair",
    "vpcCidr": "network.vpcCidr",
    "vswitchCidr": "network.vswitchCidr",
    "serviceCidr": "network.serviceCidr",
    "clusterZones": "network.zones",
    "imageId": "ecs.imageId",
    "gpuDriverBranch": "ecs.gpuDriverBranch",
    "diskCategory": "disk.category",
    "systemDiskGb": "disk.sizeGib",
    "readinessTimeoutMinutes": "ecs.readinessTimeoutMinutes",
    "hourlyPrices": "cost.prices",
    "priceCurrency": "cost.currency",
    "ackGpuNodesMin": "gpuNodes.min",
    "ackGpuNodesMax": "gpuNodes.max",
    "ackSpotInstances": "ack.spotInstances",
    "ackNodeImageType": "cluster.nodeImageType",
    "ackSystemNodeInstanceType": "cluster.systemNodeInstanceType",
    "autoscalingMetric": "scaling.metric",
    "autoscalingTarget": "scaling.target",
    "scaleDownStabilizationSeconds": "scaling.scaleDownStabilizationSeconds",
    "edgeNodePoolId": "ackEdge.nodePoolId",
    "edgeClusterOnly": "ackEdge.clusterOnly",
    "edgePodCidr": "ackEdge.podCidr",
    "virtualNodeUnit": "ackEdge.virtualNodeUnit",
    "cloudMaxPods": "ackEdge.cloudMaxPods",
    "eciInstanceTypes": "ackEdge.eciInstanceTypes",
    "slsLogging": "cluster.slsLogging",
    "kubernetesVersion": "cluster.kubernetesVersion",
    "clusterPublicEndpoint": "cluster.publicEndpoint",
    "acsGpuSeries": "acs.gpuSeries",
    "acsComputeClass": "acs.computeClass",
    "acsComputeQos": "acs.computeQos",
    "modelBucket": "modelStore.bucket",
    "retainModelStore": "modelStore.retain",
    "adoptModelBucket": "modelStore.adopt",
    "fluid": "acs.fluid",
    "jumpHost": "acs.jumpHost.enabled",
    "jumpHostInstanceType": "acs.jumpHost.instanceType",
    "storageClass": "kubernetes.storageClass",
    "benchmarkDataset": "benchmark.dataset",
    "benchmarkPrompts": "benchmark.prompts",
    "benchmarkRequestRate": "benchmark.requestRate",
    "benchmarkConcurrency": "benchmark.concurrency",
    "benchmarkInputLen": "benchmark.inputLen",
    "benchmarkOutputLen": "benchmark.outputLen",
    "gkeNodeCount": "gpuNodes.min (and gpuNodes.max)",
    "gkeReservation": "gke.capacity.mode (none/any: on-demand, specific: reservation)",
    "gkeReservationName": "gke.capacity.reservation",
    "gke.reservation": "gke.capacity (mode: reservation, reservation: <name>)",
    "gkeReleaseChannel": "gke.releaseChannel",
    "gkeModelSource": "gke.modelSource",
    "gkeRdma": "gke.rdma",
    "gkeControlPlaneCidrs": "cluster.apiCidrs",
}
PLAIN_TYPES = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text (quote it in YAML)",
    "model_type": "must be an object of keys and values",
    "model_attributes_type": "must be an object of keys and values",
    "dict_type": "must be a map of keys to values",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "missing": "is required",
}


def _group_class(annotation: Any) -> Optional[type[Group]]:
    """The Group class an annotation holds (directly or inside Optional), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Group):
            return candidate
    return None


def _by_alias(model: type[BaseModel]) -> dict[str, tuple[str, FieldInfo]]:
    return {(info.alias or name): (name, info) for name, info in model.model_fields.items()}


def _extra(info: FieldInfo, key: str) -> Any:
    extra = info.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


def key_paths(model: type[BaseModel] = StackConfig, prefix: str = "") -> list[str]:
    """Every key path of the schema (leaves and groups), for suggestions and docs/reference/config.md."""
    paths = []
    for alias, (_, info) in _by_alias(model).items():
        path = f"{prefix}{alias}"
        paths.append(path)
        inner = _group_class(info.annotation)
        if inner is not None:
            listed = get_origin(info.annotation) in (tuple, list)
            paths += key_paths(inner, f"{path}[]." if listed else f"{path}.")
    return paths


def field_at(path: list[Any]) -> Optional[FieldInfo]:
    """The schema field a (pydantic) location points at, or None."""
    model: Optional[type[BaseModel]] = StackConfig
    info = None
    for part in path:
        if model is None or not isinstance(part, str):
            break
        found = _by_alias(model).get(part)
        if found is None:
            return None
        info = found[1]
        model = _group_class(info.annotation)
    return info


def _path_text(parts: Iterable[Any]) -> str:
    """A --path key: dots between names, [i] for list items, ["k"] for map keys that are not plain names."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", str(part)):
            text += f'["{part}"]'
        else:
            text += f".{part}" if text else str(part)
    return text


def _fix_value(info: Optional[FieldInfo], item: bool) -> Any:
    """A value that passes, for the fix command: the field's example or default; one element for an item."""
    if info is None:
        return "<value>"
    example = _extra(info, EXAMPLE_KEY)
    if example is None:
        default = info.default
        if isinstance(default, BaseModel) or default in (None, (), {}, "") or repr(default) == "PydanticUndefined":
            return "<value>"
        example = default
    if item and isinstance(example, (list, tuple)):
        return example[0] if example else "<value>"
    if item and isinstance(example, dict):
        return next(iter(example.values()), "<value>")
    return example


def _problem_from_error(error: Mapping[str, Any], prefix: list[Any], problems: Problems) -> None:
    loc = [*prefix, *error["loc"]]
    key_error = bool(loc) and loc[-1] == "[key]"
    loc = [p for p in loc if p != "[key]"]
    path = _path_text(loc)
    secret = bool(loc) and loc[0] in SECRET_KEYS
    value = MASK if secret else error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        _unknown_key(path, value, problems)
        return
    if kind == "missing":
        value = None  # pydantic reports the enclosing object as the input; the key itself is not set
    names = [p for p in loc if isinstance(p, str)]
    info = field_at(names)
    inside = info is not None and len(names) > _depth(names)  # a map key or a list item of the field
    if key_error:
        problems.add(
            path,
            value,
            f"is not an allowed key here ({error['msg'].removeprefix('Input should be ')})",
            problems.rm_command(path),
        )
        return
    if kind == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", "")).replace("'", "")
        allowed = f"must be one of {expected.replace(' or ', ', ')}"
    elif kind in PLAIN_TYPES:
        allowed = PLAIN_TYPES[kind]
    else:
        allowed = error["msg"].removeprefix("Value error, ")
    if kind == "missing" and info is not None and info.description:
        allowed += f": {info.description.rstrip('.')}"
    item = inside or isinstance(loc[-1], int)
    fix = problems.set_command(path, "<value>" if secret else _fix_value(info, item), secret=secret)
    problems.add(path, value, allowed, fix)


def _depth(names: list[str]) -> int:
    """How many of `names` are schema fields (the rest are map keys below the last field)."""
    model: Optional[type[BaseModel]] = StackConfig
    depth = 0
    for part in names:
        if model is None:
            break
        found = _by_alias(model).get(part)
        if found is None:
            break
        depth += 1
        model = _group_class(found[1].annotation)
    return depth


def _unknown_key(path: str, value: Any, problems: Problems) -> None:
    moved = MOVED.get(path)
    if moved:
        problems.add(
            path,
            value,
            f"is a key of an earlier version; it is now {moved}",
            f"{problems.rm_command(path)}, then set {moved.split(' ')[0]}",
        )
        return
    # Inside a list of objects (gateway.extraRoutes[0].reasn) look among the item keys (gateway.extraRoutes[].reason),
    # then put the index back.
    indexes = re.findall(r"\[(\d+)\]", path)
    suggestion = nearest(re.sub(r"\[\d+\]", "[]", path), key_paths())
    for index in indexes:
        suggestion = suggestion.replace("[]", f"[{index}]", 1) if suggestion else None
    hint = f"; did you mean {problems.qualified(suggestion)}?" if suggestion else ""
    problems.add(
        path,
        value,
        f"is not a known key{hint}",
        problems.rm_command(path) + (f" and set {problems.qualified(suggestion)} instead" if suggestion else ""),
    )


def validate_groups(values: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """Each top-level key validated alone: {field name: parsed value}; failed or unknown keys are left out."""
    fields = _by_alias(StackConfig)
    parsed: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            _unknown_key(key, MASK if key in SECRET_KEYS else raw, problems)
            continue
        name, info = fields[key]
        annotation = info.annotation if not info.metadata else _annotated(info)
        try:
            parsed[name] = TypeAdapter(cast(Any, annotation)).validate_python(raw)
        except ValidationError as exc:
            for error in exc.errors():
                _problem_from_error(error, [key], problems)
    return parsed


def _annotated(info: FieldInfo) -> Any:
    return Annotated[(info.annotation, *info.metadata)]


def check_targets(values: Mapping[str, Any], target: str, problems: Problems) -> None:
    """A set key that does not apply to `target` is an error naming the targets it applies to."""
    _walk(values, StackConfig, "", ALL_TARGETS, target, problems)


def field_targets(info: FieldInfo, group_targets: tuple[str, ...]) -> tuple[str, ...]:
    """Where a key applies: its own `targets`, else its group's; a group key applies wherever one of its keys does."""
    own = _extra(info, TARGETS_KEY)
    inner = _group_class(info.annotation)
    if own is not None:
        return tuple(own)
    if inner is not None:
        reach = {t for i in inner.model_fields.values() for t in field_targets(i, inner.TARGETS)}
        return tuple(t for t in ALL_TARGETS if t in reach)
    return group_targets


def _walk(
    raw: Any, model: type[BaseModel], prefix: str, allowed: tuple[str, ...], target: str, problems: Problems
) -> None:
    if not isinstance(raw, Mapping):
        return
    fields = _by_alias(model)
    group_targets = model.TARGETS if issubclass(model, Group) else ALL_TARGETS
    for key, value in raw.items():
        if key not in fields:
            continue  # reported as unknown
        info = fields[key][1]
        path = f"{prefix}{key}"
        scope = tuple(t for t in allowed if t in field_targets(info, group_targets))
        inner = _group_class(info.annotation)
        if target not in scope:
            shown = MASK if key in SECRET_KEYS else value
            problems.add(
                path,
                shown,
                f"applies to target {', '.join(scope) or 'none'} only, not to {target}",
                problems.rm_command(path),
            )
            continue
        if inner is not None:
            _walk(value, inner, f"{path}.", scope, target, problems)


def check_secrets(values: Mapping[str, Any], secret_keys: frozenset[str], problems: Problems) -> None:
    for key in SECRET_KEYS:
        if values.get(key) and key not in secret_keys:
            problems.add(
                key,
                MASK,
                "is stored in plaintext in the stack config",
                f"pulumi config rm {problems.namespace}:{key} && "
                f"pulumi config set --secret {problems.namespace}:{key} <value>",
            )


__all__ = ["MOVED", "check_secrets", "check_targets", "field_at", "key_paths", "validate_groups"]
