"""The building blocks of the config schema: a strict base model and value types with readable rules.

Every group of keys (``engine``, ``placement``, ...) is a pydantic model built from these. The types
check the whole value (``re.fullmatch``: ``^...$`` with ``re.match`` accepts a trailing newline), and
each rule carries the sentence a user reads when it fails: what is allowed. Bounds that come from the
cloud or the engine say so where they are declared.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, ClassVar, LiteralString, Optional, cast

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from core.targets import ALL_TARGETS

TARGETS_KEY = "targets"  # json_schema_extra entry: the targets a key applies to
EXAMPLE_KEY = "example"  # json_schema_extra entry: a value for the fix command when there is no default


class Group(BaseModel):
    """A group of config keys: camelCase names, no unknown keys, immutable once parsed.

    TARGETS names the targets the whole group applies to; a field can narrow it with ``option(targets=...)``.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, validate_default=False
    )
    TARGETS: ClassVar[tuple[str, ...]] = ALL_TARGETS


def option(
    default: Any,
    description: str,
    *,
    targets: Optional[tuple[str, ...]] = None,
    example: Any = None,
) -> Any:
    """A documented field. `targets`: where the key applies (default: the group's); `example`: for fix commands."""
    extra: dict[str, Any] = {}
    if targets is not None:
        extra[TARGETS_KEY] = list(targets)
    if example is not None:
        extra[EXAMPLE_KEY] = example
    return Field(default, description=description, json_schema_extra=extra or None)


def rule(kind: str, message: str) -> PydanticCustomError:
    # pydantic-core types these as LiteralString to discourage templates built from user input; our messages are
    # ours (the value is never part of the template, it is reported next to it).
    return PydanticCustomError(cast(LiteralString, kind), cast(LiteralString, message))


def _strict_int(value: Any) -> Any:
    """Integers, or their decimal text (top-level keys arrive as text); never booleans or fractions."""
    if isinstance(value, bool):
        raise rule("int_type", "must be a whole number, not true/false")
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _strict_bool(value: Any) -> Any:
    """true/false only (a YAML boolean, or the text the CLI passes for a top-level key)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise rule("bool_type", "must be true or false")
    return value


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise rule("float_type", "must be a number, not true/false")
    return value


# Field types. Compose with a rule: `Annotated[Int, within(1, 65535, "TCP port")]`.
Flag = Annotated[bool, BeforeValidator(_strict_bool)]
Int = Annotated[int, BeforeValidator(_strict_int)]
Number = Annotated[float, BeforeValidator(_number)]


def within(low: int, high: int, unit: str = "") -> AfterValidator:
    """A whole number in [low, high]; the message names the range and the unit."""
    what = f" {unit}" if unit else ""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise rule("range", f"must be {low}-{high}{what}")
        return value

    return AfterValidator(check)


def between(low: float, high: float, *, exclusive: bool = False) -> AfterValidator:
    def check(value: float) -> float:
        inside = low < value < high if exclusive else low <= value <= high
        if not inside:
            span = (
                f"between {_num(low)} and {_num(high)} (exclusive)"
                if exclusive
                else f"from {_num(low)} to {_num(high)}"
            )
            raise rule("range", f"must be a number {span}")
        return value

    return AfterValidator(check)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def matches(pattern: str, what: str) -> AfterValidator:
    """The whole string matches `pattern` (fullmatch); `what` describes it to the user."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise rule("pattern", f"must be {what}")
        return value

    return AfterValidator(check)


def _ipv4_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise rule("cidr", f"must be an IPv4 CIDR like 203.0.113.0/24 ({exc})") from None
    if network.version != 4:
        raise rule("cidr", "must be an IPv4 CIDR (this field is IPv4 only)")
    return str(network)


Cidr = Annotated[str, AfterValidator(_ipv4_cidr)]

# Kubernetes object names and label values (kubernetes.io/docs/concepts/overview/working-with-objects/names).
DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DNS_SUBDOMAIN = r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?"
DnsLabel = Annotated[
    str, matches(DNS_LABEL, "a DNS-1123 label: 1-63 lowercase letters, digits and '-', not starting or ending with '-'")
]
DnsSubdomain = Annotated[
    str, matches(DNS_SUBDOMAIN, "a lowercase DNS subdomain (letters, digits, '-' and '.', at most 253)")
]
# Image references: [registry[:port]/]path[:tag][@sha256:digest] (distribution/reference grammar, simplified
# to what a shell, a pod spec and a Docker command line take without quoting surprises).
IMAGE_REFERENCE = (
    r"(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::\d{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
# ECS instance types: ecs.<family>.<size>, e.g. ecs.gn7i-c16g1.4xlarge.
ECS_INSTANCE_TYPE = r"ecs\.[a-z0-9-]+\.[a-z0-9-]+"
EcsInstanceType = Annotated[str, matches(ECS_INSTANCE_TYPE, "an ECS instance type like ecs.g7.xlarge")]
