"""Devices, so that d2l's ``try_gpu()`` and ``.to(device)`` run: wally computes on the CPU."""

from __future__ import annotations

from typing import Any


class device:  # noqa: N801 - PyTorch's name
    """``wally.device('cpu')``; asking for a CUDA device raises a clear error."""

    def __init__(self, type: Any = "cpu", index: Any = None) -> None:  # noqa: A002
        requested = str(type.type if isinstance(type, device) else type)
        if requested.split(":")[0] != "cpu":
            raise RuntimeError(
                f"wally runs on the CPU (NumPy); device {requested!r} is not available. "
                "Use wally.device('cpu') or check wally.cuda.is_available() first."
            )
        self.type: str = "cpu"
        self.index: Any = None

    def __repr__(self) -> str:
        return "device(type='cpu')"

    def __str__(self) -> str:
        return "cpu"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, device) or other == "cpu"

    def __hash__(self) -> int:
        return hash("cpu")


class cuda:  # noqa: N801 - mirrors the torch.cuda namespace
    """``wally.cuda.is_available()`` is ``False`` and ``device_count()`` is 0."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def manual_seed(seed: int) -> None:
        return None

    @staticmethod
    def manual_seed_all(seed: int) -> None:
        return None
