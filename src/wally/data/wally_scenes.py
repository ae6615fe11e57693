"""*Where's Wally*, generated: crowd scenes with one Wally in them, and patches to learn him from.

The study note's running example. A scene is a crowd of simple drawn people (a head with hair
or a hat, a shirt with sleeves, trousers, shoes) over a cluttered ground, drawn back to front so
that people lower in the picture stand in front. Exactly one of them is Wally:

- a bobble hat, red and white bands under a white pompom;
- a red-and-white shirt with **horizontal** stripes (sleeves too), glasses, blue trousers.

The crowd is varied on purpose, and some of it is made to look like him (the *decoys*): red and
white **vertical** stripes, plain red shirts, horizontal stripes in other colours (red and
black, blue and white, ...), red-and-white bobble hats on other people, and look-alikes in his
shirt but without his hat and trousers. Position tells nothing about where he is, and only the
local pattern does: translation invariance and locality, the note's two principles.

Every scene is a pure function of ``(seed, index)``: ``WallyScenes(seed=3)[7]`` is the same
picture on every machine and in every run.

Coordinates: pixel ``(row, col)`` covers ``[col, col + 1) × [row, row + 1)``; a box
``(x0, y0, x1, y1)`` holds the pixels ``image[y0:y1, x0:x1]`` (ends exclusive), and its centre
is ``((x0 + x1) / 2, (y0 + y1) / 2)``. Wally's box is *amodal*: the whole figure from the
pompom to the shoes, occluded parts included.

>>> scenes = WallyScenes(size=(192, 256), length=100, seed=0)
>>> image, box = scenes[0]          # float32 Tensor (3, 192, 256) in [0, 1]; int64 (4,) array
>>> scene = scenes.scene(0)         # everything: uint8 (H, W, 3) image, visible mask, figures
>>> patches = WallyPatches(size=32, length=2000, seed=0)
>>> x, y = patches[0]               # float32 Tensor (3, 32, 32); 1 if Wally is centred in it
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wally.backend import ndarray, xp
from wally.creation import from_numpy
from wally.data.dataset import Dataset

__all__ = [
    "FIGURE_HEIGHT",
    "FIGURE_WIDTH",
    "DECOY_KINDS",
    "INVARIANT_DECOY_KINDS",
    "CUES",
    "Look",
    "Figure",
    "WallyScene",
    "wally_look",
    "make_scene",
    "WallyScenes",
    "WallyPatches",
]

FIGURE_WIDTH = 12.0
"""Width of a figure at scale 1, in pixels (arms included)."""
FIGURE_HEIGHT = 29.0
"""Height of a figure at scale 1, in pixels (pompom to shoes)."""

# A figure is drawn in *units*: at scale s one unit is s pixels. The parts, top to bottom.
_POMPOM = (6.0, 1.5, 1.5)            # centre u, centre v, radius
_HAT_TOP, _HAT_BAND, _HAT_BOTTOM = 2.4, 4.4, 6.6
_HEAD = (6.0, 9.0, 2.8, 3.0)         # centre u, centre v, radius u, radius v
_SHIRT_TOP, _SHIRT_BOTTOM = 12.0, 20.0
_STRIPE = 2.0                        # stripe width: 4 stripes down the shirt
_TORSO = (2.2, 9.8)
_SLEEVE_BOTTOM, _HAND_BOTTOM = 18.2, 19.8
_LEGS = ((2.6, 5.8), (6.2, 9.4))
_TROUSERS_BOTTOM, _SHOES_BOTTOM = 27.4, 29.0

Colour = tuple[int, int, int]

_RED: Colour = (205, 30, 40)
_WHITE: Colour = (242, 242, 238)
_BLUE_TROUSERS: Colour = (40, 70, 175)
_WALLY_HAIR: Colour = (110, 65, 30)
_WALLY_SKIN: Colour = (240, 200, 165)

_SKINS: tuple[Colour, ...] = (
    (245, 210, 180), (230, 185, 150), (200, 150, 110), (160, 110, 75), (110, 75, 50),
)
_HAIRS: tuple[Colour, ...] = (
    (30, 25, 20), (90, 55, 25), (150, 100, 50), (220, 190, 110), (170, 70, 30), (200, 200, 200),
)
# Shirt colours of the ordinary crowd: everything but Wally's red and white.
_COLOURS: tuple[Colour, ...] = (
    (40, 90, 200), (30, 140, 60), (240, 200, 40), (240, 130, 30), (130, 60, 170),
    (120, 80, 40), (130, 130, 130), (25, 25, 30), (240, 140, 180), (40, 190, 200),
    (90, 150, 220), (170, 200, 80), (20, 40, 90), (100, 20, 40),
)
_TROUSER_COLOURS: tuple[Colour, ...] = (
    _BLUE_TROUSERS, (30, 30, 35), (100, 70, 40), (120, 120, 125), (60, 90, 50),
    (190, 170, 120), (50, 60, 110),
)
_SHOE_COLOURS: tuple[Colour, ...] = ((40, 30, 25), (90, 50, 25), (20, 20, 20), (230, 230, 230))
_GROUNDS: tuple[Colour, ...] = ((225, 205, 160), (130, 170, 95), (175, 175, 170), (200, 180, 150))

DECOY_KINDS: dict[str, float] = {
    "vertical": 0.25,      # red and white vertical stripes
    "red": 0.2,            # a plain red shirt, sometimes a red cap
    "striped": 0.2,        # horizontal stripes in two other colours (blue and white, ...)
    "red-striped": 0.15,   # horizontal stripes, red and a colour other than white
    "hat": 0.1,            # Wally's bobble hat on someone else's shirt
    "lookalike": 0.1,      # Wally's shirt, but no bobble hat and no blue trousers
}
"""The decoys and how often each appears among them."""

INVARIANT_DECOY_KINDS: dict[str, float] = {
    "red": 0.2,            # a plain red shirt, sometimes a red cap
    "striped": 0.2,        # stripes in two other colours, either way
    "red-striped": 0.15,   # stripes, red and a colour other than white, either way
    "hat": 0.15,           # Wally's bobble hat on someone else's shirt
    "lookalike": 0.3,      # Wally's red and white stripes, either way, no hat, no blue trousers
}
"""The decoys of ``cues="invariant"`` scenes: no stripe orientation tells Wally from anyone
(a decoy's stripes run either way), only what a quarter turn leaves as it is: the red and
white of his shirt *together with* his bobble hat and blue trousers (and glasses)."""

CUES = ("orientation", "invariant")
"""What tells Wally from the decoys: ``"orientation"`` (the default scenes: his stripes are
horizontal, the red and white decoys' vertical) or ``"invariant"`` (colour and parts only,
:data:`INVARIANT_DECOY_KINDS`), which a rotation-invariant finder can use in turned scenes."""


@dataclass(frozen=True)
class Look:
    """How one figure is dressed (colours as 0..255 RGB triples)."""

    skin: Colour
    hair: Colour
    headwear: str                    # "hair", "cap" or "bobble"
    hat: tuple[Colour, Colour]       # cap: its colour twice; bobble: band colours, bottom first
    pompom: Colour
    pattern: str                     # "solid", "horizontal", "vertical" or "checks"
    shirt: tuple[Colour, Colour]
    trousers: Colour
    shoes: Colour
    glasses: bool = False


def wally_look(rng: Any = None) -> Look:
    """Wally's look; with ``rng``, his colours jitter a little, as printing and light would."""
    def jitter(c: Colour, amount: int = 12) -> Colour:
        return c if rng is None else _jitter(rng, c, amount)

    return Look(skin=jitter(_WALLY_SKIN), hair=jitter(_WALLY_HAIR), headwear="bobble",
                hat=(jitter(_WHITE, 8), jitter(_RED)), pompom=jitter(_WHITE, 8),
                pattern="horizontal", shirt=(jitter(_RED), jitter(_WHITE, 8)),
                trousers=jitter(_BLUE_TROUSERS), shoes=jitter((90, 50, 25)), glasses=True)


@dataclass(frozen=True)
class Figure:
    """A person in a scene: its box ``(x0, y0, x1, y1)``, its kind ("crowd", a key of
    :data:`DECOY_KINDS`, or "occluder", the one standing in front of Wally) and its look."""

    box: tuple[int, int, int, int]
    kind: str
    look: Look


@dataclass
class WallyScene:
    """One generated scene.

    Attributes:
        image: uint8 ``(H, W, 3)``, RGB.
        box: Wally's box ``(x0, y0, x1, y1)``, ends exclusive, the whole figure.
        scale: Wally's scale (1 is :data:`FIGURE_WIDTH` × :data:`FIGURE_HEIGHT` pixels).
        visible: float32 ``(H, W)``, how much of each pixel shows Wally (0 where he is hidden
            or absent, 1 where a pixel is all Wally).
        occluded: the fraction of Wally hidden by people in front of him.
        figures: everyone else, back to front.
    """

    image: ndarray
    box: tuple[int, int, int, int]
    scale: float
    visible: ndarray
    occluded: float
    figures: list[Figure] = field(default_factory=list)

    @property
    def center(self) -> tuple[float, float]:
        """Wally's box centre ``(x, y)`` in pixel coordinates."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def figure_width(self) -> float:
        """Wally's width in pixels: the distance the benchmark allows between centres."""
        return float(self.box[2] - self.box[0])


# ----- drawing ---------------------------------------------------------------------------------
def _jitter(rng: Any, colour: Colour, amount: int = 15) -> Colour:
    r, g, b = (min(max(int(c + d), 0), 255)
               for c, d in zip(colour, rng.integers(-amount, amount + 1, 3)))
    return (r, g, b)


def _choose(rng: Any, weights: Sequence[float]) -> int:
    """An index drawn with probabilities proportional to ``weights``."""
    total, draw = 0.0, rng.random() * sum(weights)
    for i, weight in enumerate(weights):
        total += weight
        if draw < total:
            return i
    return len(weights) - 1


def _pick(rng: Any, options: Sequence[Colour], exclude: Sequence[Colour] = ()) -> Colour:
    allowed = [c for c in options if c not in exclude]
    return allowed[int(rng.integers(len(allowed)))]


# The parts of a figure, each painted in one colour of its look (see ``_palette``).
_EMPTY, _TROUSERS, _SHOES, _SHIRT_A, _SHIRT_B, _HANDS, _FACE, _HAIR, _GLASSES = range(9)
_HAT_A, _HAT_B, _BOBBLE = 9, 10, 11
_PARTS = 12
_SCALE_STEP = 0.01   # sprites are drawn for scales rounded to this step, and kept


@functools.lru_cache(maxsize=2048)
def _coverage(headwear: str, pattern: str, glasses: bool, scale_key: int,
              supersample: int = 3) -> ndarray:
    """How much of each pixel each part covers: float32 ``(h, w, parts)``, for a figure at
    scale ``scale_key · _SCALE_STEP``; anti-aliased by ``supersample²`` samples per pixel."""
    scale = scale_key * _SCALE_STEP
    height, width = _sprite_size(scale)
    n = supersample
    v = ((xp.arange(height * n, dtype=xp.float32) + 0.5) / (n * scale))[:, None]
    u = ((xp.arange(width * n, dtype=xp.float32) + 0.5) / (n * scale))[None, :]
    part = xp.zeros((height * n, width * n), dtype=xp.int64)

    def paint(mask: ndarray, value: Any) -> None:
        part[...] = xp.where(mask, value, part)

    # back to front: legs, shoes, shirt and sleeves, hands, head, hair, glasses, hat, pompom
    legs = xp.zeros(part.shape, dtype=bool)
    for left, right in _LEGS:
        legs |= (u >= left) & (u < right) & (v >= _SHIRT_BOTTOM) & (v < _SHOES_BOTTOM)
    waist = ((u >= _LEGS[0][0]) & (u < _LEGS[1][1]) & (v >= _SHIRT_BOTTOM)
             & (v < _SHIRT_BOTTOM + 1.6))
    paint((legs | waist) & (v < _TROUSERS_BOTTOM), _TROUSERS)
    paint(legs & (v >= _TROUSERS_BOTTOM), _SHOES)

    inside = (u >= _TORSO[0]) & (u < _TORSO[1])
    torso = inside & (v >= _SHIRT_TOP) & (v < _SHIRT_BOTTOM)
    arms = (u >= _TORSO[0] - 1.6) & (u < _TORSO[1] + 1.6) & ~inside & (v >= _SHIRT_TOP + 0.5)
    shirt = torso | (arms & (v < _SLEEVE_BOTTOM))
    band_v = xp.floor((v - _SHIRT_TOP) / _STRIPE).astype(xp.int64) % 2 == 1
    band_u = xp.floor((u - _TORSO[0]) / _STRIPE).astype(xp.int64) % 2 == 1
    second = {"horizontal": band_v, "vertical": band_u, "checks": band_u ^ band_v}.get(
        pattern, xp.zeros((1, 1), dtype=bool))
    paint(shirt, xp.where(second, _SHIRT_B, _SHIRT_A))
    paint(arms & (v >= _SLEEVE_BOTTOM) & (v < _HAND_BOTTOM), _HANDS)

    hu, hv, ru, rv = _HEAD
    head = ((u - hu) / ru) ** 2 + ((v - hv) / rv) ** 2 <= 1.0
    paint(head, _FACE)
    if headwear == "hair":
        paint(head & (v < hv - 0.9 * rv + 1.6), _HAIR)
    else:
        paint(head & (v < hv) & (xp.abs(u - hu) > ru * 0.72), _HAIR)
    if glasses:
        for side in (-1.1, 1.1):
            paint((u - hu - side) ** 2 + (v - hv + 0.3) ** 2 <= 0.8 ** 2, _GLASSES)
    if headwear == "bobble":
        half_width = 2.0 + 1.3 * (v - _HAT_TOP) / (_HAT_BOTTOM - _HAT_TOP)
        hat = (v >= _HAT_TOP) & (v < _HAT_BOTTOM) & (xp.abs(u - hu) <= half_width)
        paint(hat, xp.where(v >= _HAT_BAND, _HAT_B, _HAT_A))
        pu, pv, pr = _POMPOM
        paint((u - pu) ** 2 + (v - pv) ** 2 <= pr ** 2, _BOBBLE)
    elif headwear == "cap":
        cap = (v >= _HAT_BAND) & (v < _HAT_BOTTOM) & (xp.abs(u - hu) <= 3.1)
        brim = (v >= _HAT_BOTTOM - 1.0) & (v < _HAT_BOTTOM) & (u >= hu) & (u < hu + 4.2)
        paint(cap | brim, _HAT_A)

    one_hot = (part[..., None] == xp.arange(_PARTS)).astype(xp.float32)
    coverage = one_hot.reshape(height, n, width, n, _PARTS).mean(axis=(1, 3))
    coverage.flags.writeable = False
    return coverage


def _palette(look: Look) -> ndarray:
    """The colour of each part, ``(parts, 3)``; the empty part is black (premultiplied)."""
    colours = [(0, 0, 0), look.trousers, look.shoes, look.shirt[0], look.shirt[1], look.skin,
               look.skin, look.hair, (35, 35, 35), look.hat[0], look.hat[1], look.pompom]
    return xp.asarray(colours, dtype=xp.float32)


def _draw_scale(rng: Any, low: float, high: float) -> float:
    """A scale drawn from ``[low, high]``, rounded to the step sprites are drawn at."""
    return max(round(float(rng.uniform(low, high)) / _SCALE_STEP), 1) * _SCALE_STEP


def _sprite_size(scale: float) -> tuple[int, int]:
    """``(height, width)`` of a figure's sprite at ``scale`` (a multiple of the step)."""
    key = max(round(scale / _SCALE_STEP), 1) * _SCALE_STEP
    return math.ceil(FIGURE_HEIGHT * key - 1e-6), math.ceil(FIGURE_WIDTH * key - 1e-6)


def _render(look: Look, scale: float) -> tuple[ndarray, ndarray]:
    """A figure as a sprite: premultiplied RGB float32 ``(h, w, 3)`` in [0, 255] and its alpha
    ``(h, w)``."""
    coverage = _coverage(look.headwear, look.pattern, look.glasses,
                         max(round(scale / _SCALE_STEP), 1))
    return coverage @ _palette(look), 1.0 - coverage[..., _EMPTY]


def _crowd_look(rng: Any, kind: str = "crowd", cues: str = "orientation") -> Look:
    """An ordinary person, or a decoy of ``kind`` (a key of :data:`DECOY_KINDS`, or of
    :data:`INVARIANT_DECOY_KINDS` with ``cues="invariant"``, whose striped decoys draw their
    stripes' direction)."""
    skin = _jitter(rng, _SKINS[int(rng.integers(len(_SKINS)))], 8)
    hair = _pick(rng, _HAIRS)
    roll = rng.random()
    headwear = "hair" if roll < 0.6 else "cap" if roll < 0.85 else "bobble"
    band = _pick(rng, _COLOURS)
    hat = (band, band) if headwear == "cap" else (_pick(rng, _COLOURS + (_WHITE,)), band)
    pompom = _pick(rng, _COLOURS + (_WHITE,))
    pattern = ("solid", "horizontal", "vertical", "checks")[_choose(rng, (0.45, 0.25, 0.2, 0.1))]
    first = _pick(rng, _COLOURS)
    shirt = (first, _pick(rng, _COLOURS + (_WHITE,), exclude=(first,)))
    trousers = _pick(rng, _TROUSER_COLOURS)
    glasses = bool(rng.random() < 0.15)
    red, white = _jitter(rng, _RED, 12), _jitter(rng, _WHITE, 8)
    if kind == "vertical":
        pattern, shirt = "vertical", (red, white) if rng.random() < 0.5 else (white, red)
    elif kind == "red":
        pattern, shirt = "solid", (red, red)
        if rng.random() < 0.4:
            headwear, hat = "cap", (red, red)
    elif kind == "striped":
        pattern = "horizontal"
        first = _pick(rng, _COLOURS)
        shirt = (first, _pick(rng, _COLOURS + (_WHITE,), exclude=(first,)))
    elif kind == "red-striped":
        pattern = "horizontal"
        other = _pick(rng, _COLOURS)
        shirt = (red, other) if rng.random() < 0.5 else (other, red)
    elif kind == "hat":
        headwear, hat, pompom = "bobble", (white, red), white
    elif kind == "lookalike":
        pattern, shirt = "horizontal", (red, white)
        headwear = "hair" if rng.random() < 0.6 else "cap"
        hat = (band, band)
        trousers = _pick(rng, _TROUSER_COLOURS, exclude=(_BLUE_TROUSERS,))
    elif kind != "crowd":
        raise ValueError(f"WallyScenes: unknown figure kind {kind!r}; "
                         f"known: 'crowd', {', '.join(map(repr, DECOY_KINDS))}")
    if cues == "invariant" and kind in ("striped", "red-striped", "lookalike") \
            and rng.random() < 0.5:
        pattern = "vertical"
    return Look(skin=skin, hair=hair, headwear=headwear, hat=hat, pompom=pompom,
                pattern=pattern, shirt=shirt, trousers=_jitter(rng, trousers, 10),
                shoes=_pick(rng, _SHOE_COLOURS), glasses=glasses)


def _ground(rng: Any, height: int, width: int) -> ndarray:
    """The ground: a base colour with smooth blotches and clutter (towels, mats, bags)."""
    base = xp.asarray(_GROUNDS[int(rng.integers(len(_GROUNDS)))], dtype=xp.float32)
    cells = rng.normal(0.0, 12.0, (height // 16 + 2, width // 16 + 2, 3)).astype(xp.float32)
    y, x = xp.arange(height, dtype=xp.float32) / 16, xp.arange(width, dtype=xp.float32) / 16
    r, c = y.astype(xp.int64), x.astype(xp.int64)
    fy, fx = (y - r)[:, None, None], (x - c)[None, :, None]
    top = cells[r][:, c] * (1 - fx) + cells[r][:, c + 1] * fx          # bilinear blotches
    bottom = cells[r + 1][:, c] * (1 - fx) + cells[r + 1][:, c + 1] * fx
    image = base + top * (1 - fy) + bottom * fy
    for _ in range(int(rng.poisson(height * width / 1500))):
        h, w = (int(k) for k in rng.integers(3, 14, 2))
        top, left = int(rng.integers(-h + 1, height)), int(rng.integers(-w + 1, width))
        palette = _COLOURS + _GROUNDS + (_WHITE, _RED)
        colour = xp.asarray(palette[int(rng.integers(len(palette)))], dtype=xp.float32)
        image[max(top, 0):max(top + h, 0), max(left, 0):max(left + w, 0)] = colour
    return image


def _paste(canvas: ndarray, sprite: tuple[ndarray, ndarray], left: int, top: int,
           masks: Sequence[ndarray] = ()) -> None:
    """Alpha-blend ``sprite`` onto ``canvas`` at ``(left, top)``, clipped to the canvas;
    each of ``masks`` (H, W) is multiplied by ``1 − alpha`` where the sprite covers it."""
    premultiplied, alpha = sprite
    height, width = canvas.shape[:2]
    h, w = alpha.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, height), min(left + w, width)
    if y0 >= y1 or x0 >= x1:
        return
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left]
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - a[..., None]
    region += premultiplied[y0 - top:y1 - top, x0 - left:x1 - left]
    for mask in masks:
        mask[y0:y1, x0:x1] *= 1.0 - a


def _tight_box(alpha: ndarray, left: int, top: int) -> tuple[int, int, int, int]:
    """The box of a sprite's pixels at least a quarter covered, in scene coordinates."""
    rows = xp.nonzero((alpha > 0.25).any(axis=1))[0]
    cols = xp.nonzero((alpha > 0.25).any(axis=0))[0]
    return (left + int(cols[0]), top + int(rows[0]), left + int(cols[-1]) + 1,
            top + int(rows[-1]) + 1)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The area of ``a ∩ b`` as a fraction of ``b``'s area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0) / max((b[2] - b[0]) * (b[3] - b[1]), 1)


def _check_range(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    pair = (float(value), float(value)) if isinstance(value, int | float) else tuple(value)
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f"WallyScenes: {name} must be a number or a pair (low, high) within "
                         f"[{low}, {high}], got {value!r}")
    return float(pair[0]), float(pair[1])


def make_scene(
    rng: Any,
    height: int,
    width: int,
    *,
    scale: float | Sequence[float] = (0.8, 1.1),
    density: float = 0.7,
    decoys: float = 0.3,
    occlusion: float = 0.3,
    wally: bool = True,
    center: tuple[float, float] | None = None,
    max_overlap: float = 0.15,
    cues: str = "orientation",
) -> WallyScene:
    """Draw one scene with ``rng`` (a ``numpy.random.Generator``).

    Args:
        height, width: the image size; Wally must fit (at least ``FIGURE_HEIGHT · scale + 2``
            by ``FIGURE_WIDTH · scale + 2`` pixels).
        scale: the figures' scale, or a range ``(low, high)`` drawn from per figure.
        density: figure area over scene area, before overlaps (0.7: a busy crowd).
        decoys: the share of the crowd that are decoys (:data:`DECOY_KINDS`).
        occlusion: the probability that someone stands in front of Wally, their shirt over 20
            to 55% of the width of his (about 10 to 40% of him hidden).
        wally: draw Wally (``False``: a crowd without him; ``box`` is then ``(0, 0, 0, 0)``).
        center: where Wally's box centre should be (default: anywhere he fits).
        max_overlap: people in front of Wally (other than the occluder) cover at most this
            share of his box; those who would cover more step out of the picture.
        cues: ``"orientation"`` (the default scenes) or ``"invariant"``: decoys from
            :data:`INVARIANT_DECOY_KINDS`, so that only rotation-invariant cues (colours,
            hat, trousers, glasses) tell Wally apart (:data:`CUES`).
    """
    if cues not in CUES:
        raise ValueError(f"WallyScenes: cues must be one of {', '.join(map(repr, CUES))}, "
                         f"got {cues!r}")
    low, high = _check_range("scale", scale, 0.2, 8.0)
    wally_scale = _draw_scale(rng, low, high)
    need_h, need_w = (n + 2 for n in _sprite_size(wally_scale))
    if wally and (height < need_h or width < need_w):
        raise ValueError(f"WallyScenes: a {height}×{width} scene is too small for Wally at scale "
                         f"{wally_scale:.2f}; it needs at least {need_h}×{need_w}")
    canvas = _ground(rng, height, width)

    # The crowd: figures anywhere, even half out of the picture, sorted by where they stand.
    count = int(rng.poisson(density * height * width / (FIGURE_WIDTH * FIGURE_HEIGHT * low * high)))
    people: list[tuple[int, int, Look, float, str]] = []   # (foot row, left, look, scale, kind)
    table = INVARIANT_DECOY_KINDS if cues == "invariant" else DECOY_KINDS
    kinds, weights = list(table), list(table.values())
    for _ in range(count):
        s = _draw_scale(rng, low, high)
        h, w = _sprite_size(s)
        top = int(rng.integers(-h // 2, height - h // 2))
        left = int(rng.integers(-w // 2, width - w // 2))
        kind = kinds[_choose(rng, weights)] if rng.random() < decoys else "crowd"
        people.append((top + h, left, _crowd_look(rng, kind, cues), s, kind))

    visible = xp.zeros((height, width), dtype=xp.float32)
    box = (0, 0, 0, 0)
    wally_entry: tuple[int, int, Look, float, str] | None = None
    if wally:
        look = wally_look(rng)
        sprite_h, sprite_w = _sprite_size(wally_scale)
        if center is None:
            top = int(rng.integers(1, height - sprite_h))
            left = int(rng.integers(1, width - sprite_w))
        else:
            top = min(max(round(center[1] - sprite_h / 2), 0), height - sprite_h)
            left = min(max(round(center[0] - sprite_w / 2), 0), width - sprite_w)
        wally_entry = (top + sprite_h, left, look, wally_scale, "wally")
        box = (left, top, left + sprite_w, top + sprite_h)  # refined to the drawn pixels below
        foot = top + sprite_h
        people = [p for p in people if p[0] <= foot or _overlap(
            (p[1], p[0] - _sprite_size(p[3])[0], p[1] + _sprite_size(p[3])[1], p[0]),
            box) <= max_overlap]
        people.append(wally_entry)
        if rng.random() < occlusion:
            s = _draw_scale(rng, low, high)
            h, w = _sprite_size(s)
            # the occluder's shirt covers this share of Wally's, from one side
            hidden = float(rng.uniform(0.2, 0.55)) * (_TORSO[1] - _TORSO[0]) * wally_scale
            if rng.random() < 0.5:   # standing to his right
                occ_left = round(left + _TORSO[1] * wally_scale - hidden - _TORSO[0] * s)
            else:
                occ_left = round(left + _TORSO[0] * wally_scale + hidden - _TORSO[1] * s)
            occ_foot = foot + int(rng.integers(2, max(3, sprite_h // 3)))
            kind = "occluder"
            people.append((occ_foot, occ_left, _crowd_look(rng), s, kind))
    people.sort(key=lambda p: p[0])

    figures: list[Figure] = []
    drawn = 1.0
    for foot_row, left, look, s, kind in people:
        sprite = _render(look, s)
        top = foot_row - sprite[1].shape[0]
        if kind == "wally":
            _paste(canvas, sprite, left, top, [visible])
            region = visible[top:top + sprite[1].shape[0], left:left + sprite[1].shape[1]]
            region += sprite[1]
            box = _tight_box(sprite[1], left, top)
            drawn = float(sprite[1].sum())
        else:
            _paste(canvas, sprite, left, top, [visible] if wally_entry is not None else [])
            if sprite[1].any():
                figures.append(Figure(_tight_box(sprite[1], left, top), kind, look))
    occluded = 0.0 if wally_entry is None else max(1.0 - float(visible.sum()) / drawn, 0.0)

    brightness = float(rng.uniform(0.88, 1.08))
    noise = rng.normal(0.0, 3.0, canvas.shape).astype(xp.float32)
    image = xp.clip(canvas * brightness + noise, 0, 255).round().astype(xp.uint8)
    return WallyScene(image=image, box=box, scale=wally_scale, visible=visible,
                      occluded=occluded, figures=figures)


def _scene_rng(seed: int, index: int, stream: int) -> Any:
    return xp.random.default_rng([int(seed), int(index), stream])


def _image_output(image: ndarray, format: str) -> Any:
    if format == "hwc":
        return image
    return from_numpy(xp.ascontiguousarray(image.transpose(2, 0, 1), dtype=xp.float32) / 255.0)


def _check_cues(cues: str) -> str:
    if cues not in CUES:
        raise ValueError(f"WallyScenes: cues must be one of {', '.join(map(repr, CUES))}, "
                         f"got {cues!r}")
    return cues


def _check_format(format: str) -> str:
    if format not in ("chw", "hwc"):
        raise ValueError(f"WallyScenes: format must be 'chw' (float32 Tensor (3, H, W) in [0, 1]) "
                         f"or 'hwc' (uint8 array (H, W, 3)), got {format!r}")
    return format


class WallyScenes(Dataset[tuple[Any, ndarray]]):
    """Seeded crowd scenes with one Wally each, as a map-style dataset.

    ``scenes[i]`` is ``(image, box)``: the image as a float32 Tensor ``(3, H, W)`` in [0, 1]
    (``format="chw"``, what a network takes) or a uint8 array ``(H, W, 3)`` (``format="hwc"``,
    what an image file holds), and Wally's box as an int64 array ``[x0, y0, x1, y1]`` (ends
    exclusive). :meth:`scene` gives everything else (visible mask, occlusion, the crowd).
    Scene ``i`` depends only on ``seed``, ``i`` and the options, never on what was read before.

    Args:
        size: ``(H, W)`` of every scene, or one int for square scenes; any size that Wally fits.
        length: how many scenes the dataset holds.
        seed: scenes of different seeds are independent.
        scale, density, decoys, occlusion: as for :func:`make_scene`.
        transform: applied to the image (after the ``format`` conversion).
        cues: ``"orientation"`` (default) or ``"invariant"``, as for :func:`make_scene`: in
            ``"invariant"`` scenes no stripe direction tells Wally from a decoy, so a finder
            that ignores orientation can find him in turned scenes.

    >>> image, box = WallyScenes((120, 160), length=10, seed=1)[3]
    >>> image.shape, box.tolist()
    ((3, 120, 160), [...])
    """

    def __init__(
        self,
        size: int | Sequence[int] = (192, 256),
        length: int = 1000,
        seed: int = 0,
        *,
        scale: float | Sequence[float] = (0.8, 1.1),
        density: float = 0.7,
        decoys: float = 0.3,
        occlusion: float = 0.3,
        format: str = "chw",
        transform: Any = None,
        cues: str = "orientation",
    ) -> None:
        pair = (size, size) if isinstance(size, int) else tuple(int(n) for n in size)
        if len(pair) != 2 or min(pair) < 1:
            raise ValueError(f"WallyScenes: size must be an int or a pair (H, W) of positive "
                             f"ints, got {size!r}")
        if length < 0:
            raise ValueError(f"WallyScenes: length must be non-negative, got {length}")
        _check_range("scale", scale, 0.2, 8.0)
        self.size = (int(pair[0]), int(pair[1]))
        self.length = int(length)
        self.seed = int(seed)
        self.options: dict[str, Any] = {"scale": scale, "density": float(density),
                                        "decoys": float(decoys), "occlusion": float(occlusion),
                                        "cues": _check_cues(cues)}
        self.format = _check_format(format)
        self.transform = transform

    def __len__(self) -> int:
        return self.length

    def _index(self, index: int) -> int:
        if not -self.length <= index < self.length:
            raise IndexError(f"WallyScenes: index {index} out of range for {self.length} scenes")
        return index % self.length

    def scene(self, index: int) -> WallyScene:
        """Scene ``index`` with everything known about it."""
        rng = _scene_rng(self.seed, self._index(index), 0)
        return make_scene(rng, *self.size, **self.options)

    def __getitem__(self, index: int) -> tuple[Any, ndarray]:
        scene = self.scene(index)
        image = _image_output(scene.image, self.format)
        if self.transform is not None:
            image = self.transform(image)
        return image, xp.asarray(scene.box, dtype=xp.int64)

    def __repr__(self) -> str:
        cues = self.options["cues"]
        return (f"WallyScenes(size={self.size}, length={self.length}, seed={self.seed}, "
                f"format={self.format!r}" + (f", cues={cues!r})" if cues != "orientation"
                                             else ")"))


_NEGATIVES = {"decoy": 0.35, "near": 0.2, "figure": 0.2, "anywhere": 0.25}


class WallyPatches(Dataset[tuple[Any, int]]):
    """Square patches for training a Wally detector: label 1 when Wally's box centre is within
    ``jitter`` pixels of the patch centre, else 0.

    Each patch is cut from a small scene of its own, drawn as :class:`WallyScenes` draws
    (same crowd, decoys and occlusion), so patches and scenes look alike. Negatives are of
    four kinds, in these shares: centred on a decoy (35%), on Wally but off-centre by at least
    ``near`` pixels (20%: the detector must point *at* him, not next to him), on an ordinary
    person (20%), anywhere in a crowd without Wally (25%, some reaching past its border).
    ``edge_fraction`` of the positives have Wally at the border of their scene, so that the
    patch reaches past it; beyond the border a patch holds the scene's mean colour, which is
    how the finder pads a scene.

    ``patches[i]`` is ``(image, label)``: a float32 Tensor ``(3, size, size)`` in [0, 1]
    (or a uint8 ``(size, size, 3)`` array with ``format="hwc"``) and an int. :meth:`arrays`
    builds all of them at once, as arrays for a :class:`~wally.data.TensorDataset`.
    ``cues="invariant"`` cuts them from :func:`make_scene`'s invariant scenes (decoys from
    :data:`INVARIANT_DECOY_KINDS`).

    >>> patches = WallyPatches(32, length=4000, seed=0)
    >>> images, labels = patches.arrays()     # (4000, 3, 32, 32) float32, (4000,) int64
    """

    def __init__(
        self,
        size: int = 32,
        length: int = 10000,
        seed: int = 0,
        *,
        positive_fraction: float = 0.3,
        jitter: int = 2,
        near: int = 7,
        edge_fraction: float = 0.15,
        scale: float | Sequence[float] = (0.8, 1.1),
        density: float = 0.7,
        decoys: float = 0.3,
        occlusion: float = 0.3,
        format: str = "chw",
        transform: Any = None,
        cues: str = "orientation",
    ) -> None:
        if size < 8:
            raise ValueError(f"WallyPatches: size must be at least 8 pixels, got {size}")
        if not 0 <= positive_fraction <= 1:
            raise ValueError(f"WallyPatches: positive_fraction must be in [0, 1], "
                             f"got {positive_fraction}")
        if near <= jitter:
            raise ValueError(f"WallyPatches: near ({near}) must exceed jitter ({jitter}), so "
                             "that no patch is both a positive and a negative")
        self.size = int(size)
        self.length = int(length)
        self.seed = int(seed)
        self.positive_fraction = float(positive_fraction)
        self.jitter = int(jitter)
        self.near = int(near)
        self.edge_fraction = float(edge_fraction)
        self.options: dict[str, Any] = {"scale": scale, "density": float(density),
                                        "decoys": float(decoys), "occlusion": float(occlusion),
                                        "cues": _check_cues(cues)}
        self.format = _check_format(format)
        self.transform = transform
        self.context = self.size + 16   # the side of the small scene a patch is cut from

    def __len__(self) -> int:
        return self.length

    def _crop(self, image: ndarray, cx: float, cy: float) -> ndarray:
        """The ``size × size`` patch centred on ``(cx, cy)``; beyond the scene's border it
        holds the scene's mean colour, as the finder pads a scene (``heatmap``)."""
        left, top = round(cx - self.size / 2), round(cy - self.size / 2)
        pad = self.size
        mean = image.reshape(-1, 3).mean(axis=0).round().astype(xp.uint8)
        padded = xp.empty((image.shape[0] + 2 * pad, image.shape[1] + 2 * pad, 3), xp.uint8)
        padded[...] = mean
        padded[pad:-pad, pad:-pad] = image
        return padded[top + pad:top + pad + self.size, left + pad:left + pad + self.size]

    def patch(self, index: int) -> tuple[ndarray, int]:
        """Patch ``index`` as a uint8 ``(size, size, 3)`` array, and its label."""
        if not -self.length <= index < self.length:
            raise IndexError(f"WallyPatches: index {index} out of range for {self.length}")
        rng = _scene_rng(self.seed, index % self.length, 1)
        side = self.context
        middle = side / 2
        if rng.random() < self.positive_fraction:
            center = (middle, middle)
            if rng.random() < self.edge_fraction:  # Wally at the border: padding in the patch
                edge = float(rng.choice([0.0, side]))
                center = (edge, middle) if rng.random() < 0.5 else (middle, edge)
            scene = make_scene(rng, side, side, center=center, **self.options)
            cx, cy = scene.center
            dx, dy = rng.integers(-self.jitter, self.jitter + 1, 2)
            return self._crop(scene.image, cx + dx, cy + dy), 1
        names = list(_NEGATIVES)
        kind = names[_choose(rng, list(_NEGATIVES.values()))]
        if kind == "near":
            scene = make_scene(rng, side, side, center=(middle, middle), **self.options)
            cx, cy = scene.center
            angle = rng.uniform(0, 2 * math.pi)
            reach = rng.uniform(self.near, max(self.near + 1, self.size * 0.75))
            return self._crop(scene.image, cx + reach * math.cos(angle),
                              cy + reach * math.sin(angle)), 0
        options = dict(self.options)
        if kind == "decoy":
            options["decoys"] = 1.0
        scene = make_scene(rng, side, side, wally=False, **options)
        candidates = [f for f in scene.figures
                      if (kind == "decoy") == (f.kind in DECOY_KINDS
                                               or f.kind in INVARIANT_DECOY_KINDS)
                      and f.box[0] >= 0 and f.box[2] <= side]
        if kind == "anywhere" or not candidates:
            cx, cy = rng.uniform(0, side, 2)
        else:
            box = candidates[int(rng.integers(len(candidates)))].box
            cx = (box[0] + box[2]) / 2 + rng.integers(-self.jitter, self.jitter + 1)
            cy = (box[1] + box[3]) / 2 + rng.integers(-self.jitter, self.jitter + 1)
        return self._crop(scene.image, cx, cy), 0

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.patch(index)
        output = _image_output(image, self.format)
        if self.transform is not None:
            output = self.transform(output)
        return output, label

    def arrays(self) -> tuple[ndarray, ndarray]:
        """Every patch: float32 ``(N, 3, size, size)`` in [0, 1] and int64 labels ``(N,)``."""
        images = xp.empty((self.length, 3, self.size, self.size), dtype=xp.float32)
        labels = xp.empty(self.length, dtype=xp.int64)
        for i in range(self.length):
            image, labels[i] = self.patch(i)
            images[i] = image.transpose(2, 0, 1) / xp.float32(255.0)
        return images, labels

    def __repr__(self) -> str:
        return (f"WallyPatches(size={self.size}, length={self.length}, seed={self.seed}, "
                f"positive_fraction={self.positive_fraction})")
