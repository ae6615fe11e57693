"""Shared fixtures: the PyTorch oracle and hypothesis profiles."""

from __future__ import annotations

import os
import sys

# The suite tests wally's own kernels and the table's choices among them: oneDNN's convolutions
# (wally.backends.onednn, where the wheel is installed) are switched off here, and on in
# test_onednn.py, which holds them against the reference path.  Set before wally is imported
# (the switch is read at import), and inherited by the commands the tests start.
os.environ.setdefault("WALLY_ONEDNN", "0")

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


def _restore_torch() -> None:
    """Importing torch_geometric replaces ``torch.index_select`` and ``torch.select`` with its
    own (for its HashTensor; the replacement refuses 0-d inputs that torch takes). Put torch's
    own back, so that the oracle of every other test is torch."""
    torch = sys.modules.get("torch")
    if torch is None or "torch_geometric" not in sys.modules:
        return
    for name in ("index_select", "select"):
        original = getattr(torch._C._VariableFunctions, name)
        if getattr(torch, name) is not original:
            setattr(torch, name, original)


def pytest_collectreport(report):
    # After each test file is imported: the graph tests import torch_geometric at collection,
    # before the OpInfo database (imported by a later file) takes torch's functions.
    _restore_torch()


@pytest.fixture(autouse=True)
def _torch_as_torch_made_it():
    yield
    _restore_torch()  # a test that imported torch_geometric itself


@pytest.fixture
def num_threads():
    """``num_threads(n)`` runs the rest of the test on ``n`` threads (``wally.set_num_threads``);
    the count in force before is put back when the test ends, however it ends."""
    import contextlib

    from wally._parallel import num_threads

    with contextlib.ExitStack() as stack:
        yield lambda threads: stack.enter_context(num_threads(threads))


@pytest.fixture
def chunk_calls(monkeypatch) -> list[int]:
    """The number of chunks of every ``wally._parallel.run_chunks`` call made during the test
    (the chunked kernels' one way to split work among threads)."""
    from wally import _parallel

    counts: list[int] = []
    run_chunks = _parallel.run_chunks

    def counting(work, chunks, **kwargs):
        counts.append(len(chunks))
        return run_chunks(work, chunks, **kwargs)

    monkeypatch.setattr(_parallel, "run_chunks", counting)
    return counts


@pytest.fixture(autouse=True)
def _seed():
    import wally

    wally.manual_seed(0)
