"""Google Cloud rules the provider does not check (sources cited per rule)."""

from __future__ import annotations
