"""The engine's log times what the duration model assumes (core/durations.py, each figure's `measure`): a run on a
cloud reads the load and the warm-up there, so the pinned engine must print the lines the docs point at."""

from __future__ import annotations

import re

from core.engine import LOAD_TIME_LOG_LINE, WARMUP_TIME_LOG_LINE


def test_the_engine_log_times_the_load_and_the_warm_up(engine):
    text = engine.log.read_text()
    assert re.search(rf"{re.escape(LOAD_TIME_LOG_LINE)} \d+\.\d+ seconds", text), text[-2000:]
    assert re.search(rf"{re.escape(WARMUP_TIME_LOG_LINE)} \d+\.\d+ s", text), text[-2000:]
