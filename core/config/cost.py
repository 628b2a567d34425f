"""`cost`: prices for the `costEstimate` output where no live or cited price exists, and their currency."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator

from core.config.schema import Group, Number, between, matches, option, rule
from core.cost import PRICE_KEYS
from core.targets import GKE


def _price_key(key: str) -> str:
    if key not in PRICE_KEYS:
        raise rule("price_key", f"must be one of {', '.join(PRICE_KEYS)}")
    return key


PriceKey = Annotated[str, AfterValidator(_price_key)]


class CostConfig(Group):
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
