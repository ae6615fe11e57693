"""Finding Wally, an application built on the library: train the finder on patches, then slide
it over a whole crowd scene and read the peak of its heatmap.

The architecture is :func:`wally.models.wally_finder` (and its rotation-equivariant twin
:func:`wally.models.p4_wally_finder`); this module holds what is done with it:

- :func:`train_wally_finder`: the recipe (patches from :class:`wally.data.WallyPatches`, Adam
  with a one-cycle schedule, :func:`wally.train.fit` on :class:`PatchClassifier`);
- :func:`heatmap` and :func:`find_wally`: one logit per window of a scene of any size, computed in
  tiles that bound the memory, and the peak as a :class:`Detection`.

>>> finder = wally.models.wally_finder()
>>> detection = find_wally(finder, scene_image)      # the peak of the heatmap, as a box
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wally.autograd import no_grad
from wally.backend import ndarray, xp
from wally.models.wally_finder import wally_finder
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "PatchClassifier",
    "Detection",
    "heatmap",
    "find_wally",
    "check_scene_size",
    "train_wally_finder",
    "DEFAULT_FIGURE_SCALE",
]

DEFAULT_FIGURE_SCALE = 0.95
"""The figure scale the box of a detection is drawn at (the middle of the scenes' default)."""


class PatchClassifier(Module):
    """The finder as a two-class patch classifier, for training with cross-entropy.

    Its output is ``[0, z]`` per patch, ``z`` the finder's logit, so that cross-entropy with
    labels 0/1 equals binary cross-entropy on ``z`` and accuracy is the arg-max, as for any
    classifier (``wally.train.fit`` reports it). It holds the finder as ``finder``.

    Shape:
        - Input: ``(N, C, P, P)``.  - Output: ``(N, 2)``.
    """

    def __init__(self, finder: Module) -> None:
        super().__init__()
        self.finder = finder

    def forward(self, x: Tensor) -> Tensor:
        from wally.ops import cat

        logit = self.finder(x).flatten(1)
        zeros = Tensor(xp.zeros(logit.shape, dtype=logit.dtype))
        return cat([zeros, logit], dim=1)


@dataclass
class Detection:
    """Where the finder thinks Wally is.

    Attributes:
        center: ``(x, y)`` in pixels.
        box: ``(x0, y0, x1, y1)``, a figure-sized box around the centre.
        confidence: the sigmoid of the peak logit, in (0, 1).
        logit: the peak logit.
        heatmap: the logits, ``(h, w)``; unit ``(i, j)`` looks at the patch whose top-left
            corner is ``(start_x + jump·j, start_y + jump·i)``.
        start, jump: of the heatmap units' receptive field, per axis ``(y, x)``.
        patch_size: the side of the patch each unit looks at.
    """

    center: tuple[float, float]
    box: tuple[float, float, float, float]
    confidence: float
    logit: float
    heatmap: ndarray
    start: tuple[int, int]
    jump: tuple[int, int]
    patch_size: int

    def unit_center(self, row: float, col: float) -> tuple[float, float]:
        """The pixel ``(x, y)`` at the centre of the patch of heatmap unit ``(row, col)``."""
        return (self.start[1] + self.jump[1] * col + self.patch_size / 2,
                self.start[0] + self.jump[0] * row + self.patch_size / 2)


MAX_SCENE_PIXELS = 1 << 26
"""The most pixels the finder looks at, the image padded by half a patch on each side
(67 million: an 8192 × 4096 image padded to 8224 × 4128 is 34 million). It bounds the time;
memory is bounded by the tiles (:data:`TILE_PIXELS`). A 1 × 33,554,432 image, padded to
33 × 33,554,464 = 1.1 billion pixels, is refused before any work."""

TILE_PIXELS = 1 << 19
"""The most input pixels the finder is run on at once (512 Ki: a tile of about 724 × 724). A
scene larger than that is run tile by tile, the tiles overlapping by the receptive field less
one jump, so that the heatmap is the one a single pass gives; each pass needs about 170 bytes
per input pixel (the default finder's activations in float32, with convolution scratch), about
90 MB per tile."""


class _Scene:
    """An image (an array ``(H, W, 3|4)``, uint8 or float, or a Tensor ``(3, H, W)`` or
    ``(1, 3, H, W)``), handed to the finder one float32 region at a time, padded with its
    mean colour: only the region asked for is ever converted to float32."""

    def __init__(self, image: Any, pad: int) -> None:
        if isinstance(image, Tensor):
            array = image.array
            if array.ndim == 3:
                array = array[None]
            if array.ndim != 4 or array.shape[0] != 1 or array.shape[1] != 3:
                raise ValueError(f"find_wally: expected 3 colour channels (1, 3, H, W), got "
                                 f"shape {tuple(array.shape)}")
            self.planes, self.scale = array[0], 1.0  # (3, H, W)
        else:
            array = xp.asarray(image)
            if array.ndim != 3 or array.shape[2] not in (3, 4):
                raise ValueError(f"find_wally: expected an image (H, W, 3) or a Tensor "
                                 f"(3, H, W), got an array of shape {array.shape}")
            self.planes = array[..., :3].transpose(2, 0, 1)  # a view, (3, H, W)
            self.scale = 255.0 if array.dtype == xp.uint8 else 1.0
        self.height, self.width = (int(n) for n in self.planes.shape[1:])
        if self.height < 1 or self.width < 1:
            raise ValueError(f"find_wally: the image is empty ({self.width}×{self.height})")
        self.pad = pad
        # Per channel, in float64 without a float copy of the image; the padding colour.
        sums = [float(plane.sum(dtype=xp.float64)) for plane in self.planes]
        self.mean = (xp.asarray(sums) / (self.height * self.width) / self.scale).astype(
            xp.float32).reshape(3, 1, 1)

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.height + 2 * self.pad, self.width + 2 * self.pad

    def region(self, top: int, bottom: int, left: int, right: int) -> ndarray:
        """Rows ``[top, bottom)`` and columns ``[left, right)`` of the padded image, as a
        float32 batch ``(1, 3, h, w)``."""
        out = xp.empty((1, 3, bottom - top, right - left), dtype=xp.float32)
        out[0] = self.mean
        r0, r1 = max(top, self.pad), min(bottom, self.pad + self.height)
        c0, c1 = max(left, self.pad), min(right, self.pad + self.width)
        if r0 < r1 and c0 < c1:
            source = self.planes[:, r0 - self.pad:r1 - self.pad, c0 - self.pad:c1 - self.pad]
            target = out[0, :, r0 - top:r1 - top, c0 - left:c1 - left]
            if self.scale == 1.0:
                target[...] = source
            else:
                xp.divide(source, xp.float32(self.scale), out=target, dtype=xp.float32)
        return out


def _patch_size(model: Module) -> int:
    size = getattr(model, "input_size", None)
    if size is None:
        raise ValueError("find_wally: the model records no input_size (the patch size it was "
                         "trained on); build it with wally.models.wally_finder")
    return int(size[-1])


def check_scene_size(model: Module, height: int, width: int) -> None:
    """Refuse (``ValueError``) an image of ``height × width`` that, padded by half a patch on
    each side, is more than :data:`MAX_SCENE_PIXELS` pixels: what :func:`heatmap` checks,
    callable before the image is even decoded."""
    pad = _patch_size(model) // 2
    padded = (height + 2 * pad) * (width + 2 * pad)
    if padded > MAX_SCENE_PIXELS:
        raise ValueError(
            f"a {width}×{height} image is {width + 2 * pad}×{height + 2 * pad} = {padded:,} "
            f"pixels once padded by {pad} on each side, more than the {MAX_SCENE_PIXELS:,} "
            "the finder looks at")


def _tiles(total: int, per_tile: int) -> list[tuple[int, int]]:
    return [(first, min(first + per_tile, total)) for first in range(0, total, per_tile)]


def _tile_plan(model: Module, patch: int, padded: tuple[int, int]
               ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """``(units, size, jump)`` per axis ``(y, x)``: the heatmap's size, the receptive field's
    and its jump, when the model can be run tile by tile (a stack of unpadded windows, whose
    unit ``i`` sees exactly pixels ``[jump·i, jump·i + size)``); None otherwise."""
    from wally.analysis import receptive_field

    field = receptive_field(model, (3, patch, patch))
    if (field is None or not field.exact or len(field.axes) != 2
            or any(a.start != 0 or a.jump < 1 for a in field.axes)):
        return None
    sizes = (field.axes[0].size, field.axes[1].size)
    jumps = (field.axes[0].jump, field.axes[1].jump)
    if padded[0] < sizes[0] or padded[1] < sizes[1]:
        return None
    units = ((padded[0] - sizes[0]) // jumps[0] + 1, (padded[1] - sizes[1]) // jumps[1] + 1)
    return units, sizes, jumps


def heatmap(model: Module, image: Any) -> tuple[ndarray, int]:
    """The finder's logits over ``image``, in eval mode without gradients, and the padding
    added on each side.

    The image is first padded by half a patch on every side with its mean colour, so that
    every pixel, up to the border, is the centre of some window: unit ``(i, j)`` then looks at
    the window centred on pixel ``(4i, 4j)``, and the heatmap covers the whole image
    (``⌊(H + 2)/4⌋ + 1`` by ``⌊(W + 2)/4⌋ + 1`` units for the default finder).

    Memory is bounded whatever the image's size: the finder runs on tiles of at most
    :data:`TILE_PIXELS` input pixels (overlapping, so the heatmap is a single pass's), and
    only each tile is converted to float32. A padded image of more than
    :data:`MAX_SCENE_PIXELS` pixels is refused with a ``ValueError`` before any work.
    """
    patch = _patch_size(model)
    scene = _Scene(image, patch // 2)
    check_scene_size(model, scene.height, scene.width)
    padded = scene.padded_shape
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            plan = _tile_plan(model, patch, padded) if padded[0] * padded[1] > TILE_PIXELS \
                else None
            if plan is None:
                logits = model(Tensor(scene.region(0, padded[0], 0, padded[1]))).array[0, 0]
            else:
                logits = _tiled_logits(model, scene, *plan)
    finally:
        model.train(was_training)
    return logits, scene.pad


def _tiled_logits(model: Module, scene: _Scene, units: tuple[int, int],
                  size: tuple[int, int], jump: tuple[int, int]) -> ndarray:
    """The heatmap, tile by tile: tile rows ``[r0, r1)`` of units need input rows
    ``[jump·r0, jump·(r1 − 1) + size)``, and likewise for columns."""
    side = max(1, (math.isqrt(TILE_PIXELS) - max(size)) // max(jump) + 1)
    if units[1] <= units[0]:  # tall or square: square tiles, or full-width strips
        cols = min(units[1], side)
        rows = max(1, (TILE_PIXELS // ((cols - 1) * jump[1] + size[1]) - size[0]) // jump[0] + 1)
    else:  # wide: square tiles, or full-height strips
        rows = min(units[0], side)
        cols = max(1, (TILE_PIXELS // ((rows - 1) * jump[0] + size[0]) - size[1]) // jump[1] + 1)
    logits = xp.empty(units, dtype=xp.float32)
    for r0, r1 in _tiles(units[0], rows):
        for c0, c1 in _tiles(units[1], cols):
            batch = scene.region(jump[0] * r0, jump[0] * (r1 - 1) + size[0],
                                 jump[1] * c0, jump[1] * (c1 - 1) + size[1])
            out = model(Tensor(batch)).array[0, 0]
            logits[r0:r1, c0:c1] = out[:r1 - r0, :c1 - c0]
    return logits


def find_wally(
    model: Module,
    image: Any,
    figure_size: tuple[float, float] | None = None,
) -> Detection:
    """Run the finder over ``image`` and return the peak of its heatmap as a :class:`Detection`.

    The peak's position is refined to a fraction of a unit by the centroid of the sigmoid of
    the logits in its 3×3 neighbourhood; units map to pixels through the receptive field that
    :func:`wally.analysis.receptive_field` computes for the model (start and jump).

    Args:
        model: a :func:`wally_finder` (trained).
        image: a float Tensor ``(3, H, W)`` in [0, 1], or an array ``(H, W, 3)``.
        figure_size: ``(width, height)`` of the box drawn around the centre; default a figure
            at scale :data:`DEFAULT_FIGURE_SCALE`.
    """
    from wally.analysis import receptive_field
    from wally.data.wally_scenes import FIGURE_HEIGHT, FIGURE_WIDTH

    logits, pad = heatmap(model, image)
    patch = _patch_size(model)
    field = receptive_field(model, (3, patch, patch))
    if field is None or len(field.axes) != 2:
        raise ValueError("find_wally: the model's output does not depend on the image")
    row, col = (int(i) for i in xp.unravel_index(int(logits.argmax()), logits.shape))
    top, left = max(row - 1, 0), max(col - 1, 0)
    window = logits[top:row + 2, left:col + 2].astype(xp.float64)
    weights = 1.0 / (1.0 + xp.exp(-(window - window.max())))
    rows, cols = xp.mgrid[top:top + window.shape[0], left:left + window.shape[1]]
    refined_row = float((weights * rows).sum() / weights.sum())
    refined_col = float((weights * cols).sum() / weights.sum())
    peak = float(logits[row, col])
    detection = Detection(
        center=(0.0, 0.0), box=(0.0, 0.0, 0.0, 0.0),
        confidence=1.0 / (1.0 + math.exp(-min(max(peak, -60.0), 60.0))), logit=peak,
        heatmap=logits, start=(field.start[0] - pad, field.start[1] - pad),
        jump=(field.jump[0], field.jump[1]), patch_size=patch,
    )
    cx, cy = detection.unit_center(refined_row, refined_col)
    width, height = figure_size or (FIGURE_WIDTH * DEFAULT_FIGURE_SCALE,
                                    FIGURE_HEIGHT * DEFAULT_FIGURE_SCALE)
    detection.center = (cx, cy)
    detection.box = (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)
    return detection


def train_wally_finder(
    model: Module | None = None,
    *,
    patches: int = 8000,
    val_patches: int = 800,
    epochs: int = 4,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    patch_size: int = 32,
    metrics_path: Any = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict[str, Any]], Any]] = (),
    log: Callable[[str], None] | None = print,
    cues: str = "orientation",
) -> tuple[Module, Any]:
    """Generate :class:`~wally.data.WallyPatches` and train a finder on them with
    :func:`wally.train.fit` (Adam, one-cycle learning rate, cross-entropy through
    :class:`PatchClassifier`). Returns the trained finder and the :class:`~wally.train.History`.

    Training patches come from ``WallyPatches(seed=seed)``, validation patches from
    ``WallyPatches(seed=seed + 1)``. ``metrics_path``, ``progress`` and ``callbacks`` go to
    ``fit`` (a ``metrics.jsonl``, the progress bar, per-epoch calls); ``log`` gets one line
    about the data (``None``: silent). ``cues="invariant"`` draws the patches from the scenes
    in which only rotation-invariant cues tell Wally apart (for
    :func:`wally.models.p4_wally_finder`).
    """
    import time

    from wally.creation import from_numpy, manual_seed
    from wally.data import DataLoader, TensorDataset
    from wally.data.wally_scenes import WallyPatches
    from wally.optim import Adam
    from wally.optim.lr_scheduler import OneCycleLR
    from wally.train import fit

    manual_seed(seed)
    finder = model if model is not None else wally_finder(patch_size=patch_size)
    size = _patch_size(finder)
    start = time.perf_counter()
    train_x, train_y = WallyPatches(size, patches, seed, cues=cues).arrays()
    val_x, val_y = WallyPatches(size, val_patches, seed + 1, cues=cues).arrays()
    if log is not None:
        log(f"generated {patches:,} training and {val_patches:,} validation patches "
            f"({size}×{size}, {int(train_y.sum()):,} with Wally centred) in "
            f"{time.perf_counter() - start:.1f} s")
    train_loader = DataLoader(TensorDataset(from_numpy(train_x), from_numpy(train_y)),
                              batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(from_numpy(val_x), from_numpy(val_y)),
                            batch_size=256)
    classifier = PatchClassifier(finder)
    optimizer = Adam(classifier.parameters(), lr=lr)
    scheduler = OneCycleLR(optimizer, max_lr=lr, total_steps=max(epochs * len(train_loader), 1))
    history = fit(classifier, train_loader, val_loader, optimizer=optimizer, epochs=epochs,
                  scheduler=scheduler, scheduler_step="batch", progress=progress,
                  callbacks=callbacks, metrics_path=metrics_path, seed=seed)
    finder.eval()
    return finder, history
