"""torchvision as an oracle for the wally.vision tests, where it can be imported."""

from __future__ import annotations

import importlib.util

import pytest


def import_torchvision():
    """torchvision, or a skip. The PyPI wheel is built against CUDA torch: on CPU torch its
    compiled ops do not load, and registering their fake kernels fails at import. The
    transforms, utils and models used here do not need those ops, so that registration is
    skipped while importing."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed: pip install --no-deps torchvision==0.28.* "
                    "to compare with it")
    original = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: (lambda function: function)
    try:
        import torchvision
    except Exception as error:  # noqa: BLE001 - any import failure means: cannot compare
        pytest.skip(f"torchvision does not import here: {error}")
    finally:
        torch.library.register_fake = original
    return torchvision
