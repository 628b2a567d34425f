import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import reset_runtime


@pytest.fixture(autouse=True)
def _fresh_pulumi_runtime():
    """Every test starts and ends with clean Pulumi runtime settings (no mocks leak between tests)."""
    reset_runtime()
    yield
    reset_runtime()
