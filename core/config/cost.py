"""`cost`: prices for the `costEstimate` output where no live or cited price exists, and their currency."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator

from core.config.problems import Problems
from core.config.schema import Group, Number, between, matches, option, rule
from core.cost import PRICE_KEY_TARGETS, PRICE_KEYS
from core.targets import ACK, ACK_EDGE, ACS, ECS, GKE


def _price_key(key: str) -> str:
    if key not in PRICE_KEYS:
        raise rule("price_key", f"must be one of {', '.join(PRICE_KEYS)}")
    return key


PriceKey = Annotated[str, AfterValidator(_price_key)]


class CostConfig(Group):
    TARGETS = (ECS, ACS, ACK, ACK_EDGE, GKE)  # kubernetes has no costEstimate
    prices: dict[PriceKey, Annotated[Number, between(0, 1_000_000)]] = option(
        {},
        "Price per unit-hour (gcs.gib-month: per GiB-month) by item, in cost.currency, e.g. {acs-gpu: 30}.",
        example={"acs-gpu": 30},
    )
    currency: Optional[Annotated[str, matches(r"[A-Z]{3}", "a three-letter ISO currency code like CNY")]] = option(
        None, "Currency of cost.prices; empty: the target's (CNY on Alibaba Cloud, USD on gke)."
    )

    def currency_for(self, target: str) -> str:
        return self.currency or ("USD" if target == GKE else "CNY")


def check_prices(config: CostConfig, target: str, problems: Problems) -> None:
    """A price for an item this target's costEstimate never has would change nothing: refused."""
    for key in sorted(config.prices):
        if target not in PRICE_KEY_TARGETS[key]:
            mine = sorted(k for k, targets in PRICE_KEY_TARGETS.items() if target in targets)
            problems.add(
                f"cost.prices.{key}",
                config.prices[key],
                f"prices an item {target}'s costEstimate does not have (only {', '.join(PRICE_KEY_TARGETS[key])}); "
                f"{target}'s items: {', '.join(mine)}",
                problems.rm_command(f"cost.prices.{key}"),
            )
