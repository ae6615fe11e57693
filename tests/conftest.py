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


@pytest.fixture
def num_threads():
    """``num_threads(n)`` runs the rest of the test on ``n`` threads (``wally.set_num_threads``);
    the count in force before is put back when the test ends, however it ends."""
    from wally._parallel import get_num_threads, set_num_threads

    previous = get_num_threads()
    yield set_num_threads
    set_num_threads(previous)


@pytest.fixture(autouse=True)
def _seed():
    import wally

    wally.manual_seed(0)
