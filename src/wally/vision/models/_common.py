"""What the torchvision builders share: the ``weights=`` / ``pretrained=`` arguments (accepted,
and refused unless they ask for no weights, since wally downloads no pretrained weights), and
filling a parameter that a layer may lack (a bias-free convolution, a non-affine norm)."""

from __future__ import annotations

from typing import Any

from wally.nn import init
from wally.tensor import Tensor


def constant_if_present(parameter: Tensor | None, value: float) -> None:
    """``init.constant_(parameter, value)`` where the layer has that parameter."""
    if parameter is not None:
        init.constant_(parameter, value)


def check_no_weights(name: str, weights: Any, kwargs: dict[str, Any]) -> None:
    """Refuse ``weights`` other than None (and a true ``pretrained``, torchvision's older
    spelling, removed from ``kwargs``), naming the builder and what to do instead."""
    pretrained = kwargs.pop("pretrained", False)
    kwargs.pop("progress", None)
    asked = weights if weights is not None else ("pretrained=True" if pretrained else None)
    if asked is not None:
        raise ValueError(
            f"{name}: weights={asked!r} cannot be loaded: wally fetches no pretrained weights "
            f"(only random initialisation); build {name}(weights=None) and load a state_dict "
            "saved from the same torchvision model with model.load_state_dict(...)")
