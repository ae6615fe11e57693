"""Where ``wally find`` and ``wally viz`` get their model and their image from."""

from __future__ import annotations

import argparse
import os
from typing import Any

from wally.cli import CommandError, missing_package


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint C`` or ``--model NAME`` (one of them)."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--checkpoint", metavar="C",
                       help="a wally checkpoint (.safetensors) that records its model")
    group.add_argument("--model", metavar="NAME",
                       help="a fresh, untrained model from the registry (wally.models), "
                            "e.g. lenet or wally_finder")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of a fresh model's initial weights (0)")


def load_model(checkpoint: str | None, name: str | None = None, seed: int = 0) -> Any:
    """The model of ``checkpoint``, rebuilt from its recorded config, or a fresh ``name``."""
    import wally
    from wally.models import get_model, list_models

    if checkpoint is not None:
        from wally.io import CheckpointError, load_checkpoint

        if not os.path.exists(checkpoint):
            raise CommandError(f"no checkpoint at {checkpoint}")
        try:
            loaded = load_checkpoint(checkpoint)
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        model = loaded.model
        if getattr(model, "input_size", None) is not None:
            from wally.cli.evaluate import input_size_of

            input_size_of(model, loaded)  # bounded before an image is resized to it
    else:
        from wally.models.registry import suggest

        names = list_models(buildable=True)
        if name not in names:
            why = (" (it needs an arch: build it in Python)" if name in list_models()
                   else suggest(str(name), names))
            raise CommandError(f"unknown model {name!r}{why}; known models: "
                               + ", ".join(names))
        wally.manual_seed(seed)
        model = get_model(str(name))
    model.eval()
    return model


def require_file(path: str, what: str = "image") -> None:
    """A :class:`CommandError` if nothing is at ``path``; any other reason it can't be looked up
    (a name too long, no permission) raises its ``OSError``, which the command line reports."""
    try:
        os.stat(path)
    except FileNotFoundError:
        raise CommandError(f"no {what} at {path}") from None


def read_image(path: str) -> Any:
    """An image file as uint8 ``(H, W, 3)``; a :class:`CommandError` when it can't be read."""
    from wally.viz import read_image as read

    require_file(path)
    try:
        return read(path)
    except ImportError as error:
        raise CommandError(missing_package(error)) from None
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path} as an image: {error}") from None


def image_for_model(model: Any, image: Any) -> Any:
    """``image`` (uint8 ``(H, W, 3)``) as the float32 ``(1, C, H, W)`` batch ``model`` takes
    (a batch, so that no later step has to guess the layout of a 1- or 3-pixel-wide image):
    grey by the ITU-R 601 luma weights for one-channel models, and resized (Pillow, bilinear)
    to ``model.input_size`` when the model has a ``Linear`` layer, which fixes its input size.
    """
    from wally import nn
    from wally.backend import xp

    size = getattr(model, "input_size", None)
    channels = int(size[0]) if size is not None else 3
    if size is not None and any(isinstance(m, nn.Linear) for m in model.modules()):
        from PIL import Image

        height, width = int(size[1]), int(size[2])
        image = xp.asarray(Image.fromarray(image).resize((width, height),
                                                         Image.Resampling.BILINEAR))
    array = image.astype(xp.float32).transpose(2, 0, 1) / 255.0
    if channels == 1:
        luma = xp.asarray([0.299, 0.587, 0.114], dtype=xp.float32).reshape(3, 1, 1)
        array = (array * luma).sum(axis=0, keepdims=True)
    elif channels != 3:
        raise CommandError(f"the model takes {channels}-channel images; only 1 and 3 are "
                           "supported from image files")
    return xp.ascontiguousarray(array[None], dtype=xp.float32)
