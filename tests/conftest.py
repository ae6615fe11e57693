"""Shared fixtures: the PyTorch oracle and hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("WALLY_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def torch():
    """The torch module, or a skip that says why (the comparison tests need torch==2.13.0)."""
    return pytest.importorskip(
        "torch", reason="PyTorch is not installed: pip install torch==2.13.0 to compare with it"
    )


@pytest.fixture(autouse=True)
def _seed():
    import wally

    wally.manual_seed(0)
