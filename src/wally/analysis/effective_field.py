"""The effective receptive field, measured (Luo, Li, Urtasun and Zemel 2016).

The analytic receptive field (:mod:`wally.analysis.receptive_field`) is the box of input pixels
that one output unit *can* see. How much each pixel actually matters is the magnitude of the
unit's input gradient. For a unit ``u`` (default: the centre unit of a layer's map, its
channels summed), averaged over a batch of ``N`` inputs ``x⁽ⁿ⁾`` (real images when given,
else standard normal noise), the *effective field* is the map

    ``G(p) = (1/N) Σₙ Σ_c |∂y_u(x⁽ⁿ⁾) / ∂x⁽ⁿ⁾_{c,p}|``          (one value per input pixel ``p``)

normalised to a distribution ``g(p) = G(p) / Σ_q G(q)``. Two numbers summarise it:

* the **share inside the analytic box** ``Σ_{p ∈ box} g(p)``: 1 wherever the analysis is exact
  (a gradient cannot leave the field), below 1 where the analytic field is only a bound;
* the **radius holding a share** ``s`` (default 95 %), measured from the centre ``c`` of the
  unit's analytic field in the **Chebyshev** metric ``d(p) = maxₐ |pₐ − cₐ|`` (the analytic
  field is a box, so ``d ≤ R`` is a box too; ``metric="euclidean"`` gives discs): with the
  distinct distances ``d₀ < d₁ < …`` and the mass ``M(dᵢ) = Σ_{d(p) ≤ dᵢ} g(p)`` within each,
  with ring edges ``ρᵢ = dᵢ + ½`` (``ρ₋₁ = 0``, ``M₋₁ = 0``) the radius is
  ``ρᵢ₋₁ + (s − Mᵢ₋₁) / (Mᵢ − Mᵢ₋₁) · (ρᵢ − ρᵢ₋₁)`` for the first
  ``i`` with ``M(dᵢ) ≥ s``, where a ring's pixels reach ``dᵢ + ½`` (so the radius is the
  half-width of a box of whole pixels: linear between ring edges, mass 0 at radius 0). At
  ``s = 1`` it is ``r/2`` for an ``r``-pixel field whose corners carry mass: the *analytic
  radius* is the same half-width of the analytic box.

Theory (Luo et al., §2): in a stack of ``n`` random-weight ``3 × 3`` stride-1 convolutions
the gradient is a sum over the paths through the stack, each a walk of ``n`` steps in
``{−1, 0, 1}²``; by the central limit theorem ``E[G]`` tends to a Gaussian of standard
deviation ``∝ √n``, so the effective radius grows like ``√n`` while the analytic radius is
``n + ½`` (the half-width of the ``(2n + 1)``-pixel box): the effective field fills a share
``∝ 1/n`` of the analytic box's area.
:func:`stack_radii` measures both for ``n = 1 … N`` and fits the exponents.

Example::

    >>> field = effective_field(wally.models.lenet(), (1, 28, 28), layer="5", images=8)
    >>> field.share_inside, round(field.radius, 2), field.analytic_radius
    (1.0, 7.61, 8.0)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wally.analysis.receptive_field import ReceptiveField, _output_of, receptive_field
from wally.autograd import enable_grad
from wally.backend import ndarray, xp
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "EffectiveField",
    "StackRadii",
    "effective_field",
    "effective_fields",
    "gradient_map",
    "radius_holding",
    "reinitialised",
    "stack_radii",
]

_METRICS = ("chebyshev", "euclidean")


@dataclass(frozen=True)
class EffectiveField:
    """The measured field of one unit: ``map`` is ``G`` (spatial shape of the input), ``centre``
    the input coordinate of the unit's analytic centre, ``box`` its analytic box cut to the image
    (``None`` where the field is unknown), ``radius`` the ``metric`` radius holding ``share`` of
    the gradient mass, ``analytic_radius`` the same at share 1 of the analytic box,
    ``area_share`` the fraction of the analytic box's pixels within ``radius``."""

    layer: str
    unit: tuple[int, ...]
    images: int
    inputs: str  # "random" or "given"
    metric: str
    share: float
    centre: tuple[float, ...]
    box: tuple[tuple[int, int], ...] | None
    share_inside: float | None
    radius: float
    analytic_radius: float | None
    area_share: float | None
    map: ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer, "unit": list(self.unit), "images": self.images,
            "inputs": self.inputs, "metric": self.metric, "share": self.share,
            "centre": list(self.centre),
            "box": None if self.box is None else [list(b) for b in self.box],
            "share_inside_box": self.share_inside, "radius": self.radius,
            "analytic_radius": self.analytic_radius, "area_share": self.area_share,
        }

    def __str__(self) -> str:
        name = self.layer or "(output)"
        head = f"layer {name}, unit {self.unit}, {self.images} {self.inputs} input(s): "
        radius = f"{100 * self.share:g} % within {self.metric} radius {self.radius:.2f} px"
        if self.box is None or self.share_inside is None or self.analytic_radius is None:
            # a global unit (after a flatten or a global pooling): no box to compare with
            return head + f"{radius} (the analytic field is the whole input)"
        area = "" if self.area_share is None else \
            f", {100 * self.area_share:.1f} % of the box's pixels"
        return (head + f"{100 * self.share_inside:.1f} % of the gradient mass inside the "
                f"analytic box {self.box}; {radius} (analytic radius "
                f"{self.analytic_radius:g}{area})")


def _check_share(share: float, op: str) -> float:
    if not isinstance(share, int | float) or isinstance(share, bool) \
            or not 0 < float(share) <= 1:
        raise ValueError(f"{op}: share must be a number in (0, 1], got {share!r}")
    return float(share)


def _distances(shape: Sequence[int], centre: Sequence[float], metric: str) -> ndarray:
    grids = xp.meshgrid(*[xp.arange(n, dtype=xp.float64) - c for n, c in zip(shape, centre,
                                                                           strict=True)],
                        indexing="ij")
    if metric == "chebyshev":
        return xp.max(xp.abs(xp.stack(grids)), axis=0)
    return xp.sqrt(sum(g * g for g in grids))


def radius_holding(mass: ndarray, centre: Sequence[float], share: float = 0.95,
                   metric: str = "chebyshev") -> float:
    """The radius around ``centre`` (input coordinates, one per axis of ``mass``) holding
    ``share`` of the non-negative map ``mass``, interpolated linearly between the distinct
    distances (see the module's docstring).

    Example::

        >>> radius_holding(xp.ones((3, 3)), (1, 1), share=1.0)   # the 3-pixel box
        1.5
    """
    share = _check_share(share, "radius_holding")
    if metric not in _METRICS:
        raise ValueError(f"radius_holding: metric must be one of {_METRICS}, got {metric!r}")
    mass = xp.asarray(mass, dtype=xp.float64)
    if len(centre) != mass.ndim:
        raise ValueError(f"radius_holding: expected a centre of {mass.ndim} coordinates, got "
                         f"{len(centre)}")
    total = float(mass.sum())
    if not total > 0 or bool((mass < 0).any()):
        raise ValueError("radius_holding: the map must be non-negative with a positive sum "
                         f"(the unit does not depend on the input), got sum {total}")
    dist = _distances(mass.shape, centre, metric).ravel()
    order = xp.argsort(dist, kind="stable")
    dist, cumulative = dist[order], xp.cumsum(mass.ravel()[order]) / total
    # the mass within each distinct distance: the last cumulative value of each run
    last = xp.nonzero(xp.append(dist[1:] != dist[:-1], True))[0]
    rings, within = dist[last] + 0.5, cumulative[last]  # a ring's pixels reach d + ½
    i = int(xp.searchsorted(within, share - 1e-12))
    i = min(i, len(rings) - 1)
    lo_d, lo_m = (0.0, 0.0) if i == 0 else (float(rings[i - 1]), float(within[i - 1]))
    hi_d, hi_m = float(rings[i]), float(within[i])
    if hi_m <= lo_m:
        return hi_d
    return lo_d + (share - lo_m) / (hi_m - lo_m) * (hi_d - lo_d)


def gradient_map(model: Module, x: Tensor | ndarray, layer: str | None = None,
                 unit: Sequence[int] | None = None, channel: int | None = None,
                 chunk: int = 32) -> tuple[ndarray, tuple[int, ...]]:
    """``G``: the mean over the batch ``x`` of ``Σ_c |∂y_unit/∂x_c|`` (float64, the input's
    spatial shape) and the unit used (default the centre of ``layer``'s map). The model is
    copied in evaluation mode, so batch elements don't interact and its own mode, parameters
    and ``.grad`` are untouched; one backward pass per ``chunk`` inputs.

    Shape:
        ``x``: ``(N, C, *spatial)``; returns ``(*spatial)``.

    Example::

        >>> G, unit = gradient_map(wally.models.lenet(), wally.randn(4, 1, 28, 28), "0")
        >>> G.shape, unit
        ((28, 28), (13, 13))
    """
    array = xp.asarray(getattr(x, "array", x))
    if array.ndim < 3:
        raise ValueError(f"gradient_map: expected an input (N, C, *spatial), got shape "
                         f"{tuple(array.shape)}")
    probe = copy.deepcopy(model)
    probe.eval()
    probe.requires_grad_(False)
    dtype = next((p.array.dtype for p in probe.parameters()), xp.dtype(xp.float32))
    nd = array.ndim - 2
    total = xp.zeros(array.shape[2:], dtype=xp.float64)
    used: tuple[int, ...] = ()
    for start in range(0, array.shape[0], chunk):
        leaf = Tensor(xp.array(array[start:start + chunk], dtype=dtype), requires_grad=True)
        with enable_grad():
            out = _output_of(probe, layer, leaf)
            if not out.requires_grad:
                raise ValueError(f"gradient_map: layer {layer!r}'s output does not depend on "
                                 "the input")
            seed = xp.zeros(out.shape, dtype=out.dtype)
            picked: Any = slice(None) if channel is None else channel
            if out.ndim == nd + 2:
                spatial = tuple(out.shape[2:])
                used = tuple(unit) if unit is not None else tuple((n - 1) // 2 for n in spatial)
                if len(used) != nd or any(not 0 <= u < n for u, n in zip(used, spatial,
                                                                          strict=True)):
                    raise ValueError(f"gradient_map: unit {tuple(used)} is not a position of "
                                     f"the {spatial} map of layer {layer!r}")
                seed[(slice(None), picked) + used] = 1
            else:
                seed[(slice(None), picked)] = 1
            out.backward(seed)
        assert leaf.grad is not None
        total += xp.abs(leaf.grad.array.astype(xp.float64)).sum(axis=(0, 1))
    return total / array.shape[0], used


def _inputs(model: Module, x: Any, input_size: Sequence[int] | None, images: int,
            seed: int) -> tuple[ndarray, str]:
    if x is not None:
        return xp.asarray(getattr(x, "array", x)), "given"
    size = input_size if input_size is not None else getattr(model, "input_size", None)
    if size is None:
        raise ValueError("effective_field: give inputs x or an input_size (C, *spatial); the "
                         "model records none")
    if not isinstance(images, int) or images < 1:
        raise ValueError(f"effective_field: images must be a positive int, got {images!r}")
    rng = xp.random.default_rng(seed)
    return rng.standard_normal((images, *tuple(size))), "random"


def effective_field(
    model: Module,
    input_size: Sequence[int] | None = None,
    layer: str | None = None,
    unit: Sequence[int] | None = None,
    *,
    x: Tensor | ndarray | None = None,
    images: int = 16,
    share: float = 0.95,
    metric: str = "chebyshev",
    channel: int | None = None,
    seed: int = 0,
) -> EffectiveField:
    """The effective field of ``unit`` (default the centre) of ``layer``'s output (a dotted
    name as in ``named_modules``; default the model's output), averaged over the inputs ``x``
    (``(N, C, *spatial)``) or, without them, ``images`` standard normal inputs of
    ``input_size`` ``(C, *spatial)`` (default ``model.input_size``) drawn with ``seed``: the
    map ``G``, the share of its mass inside the analytic box, and the ``metric`` radius from
    the unit's analytic centre holding ``share`` of it (see the module's docstring).

    Example::

        >>> f = effective_field(wally.models.lenet(), (1, 28, 28), layer="0")
        >>> f.share_inside, f.analytic_radius     # the 5 × 5 kernel
        (1.0, 2.5)
    """
    share = _check_share(share, "effective_field")
    if metric not in _METRICS:
        raise ValueError(f"effective_field: metric must be one of {_METRICS}, got {metric!r}")
    if layer is not None and layer not in dict(model.named_modules()):
        raise ValueError(f"effective_field: the model has no layer named {layer!r}")
    array, kind = _inputs(model, x, input_size, images, seed)
    spatial = tuple(array.shape[2:])
    G, used = gradient_map(model, array, layer, unit, channel)
    analytic: ReceptiveField | None = receptive_field(model, tuple(array.shape[1:]), layer)
    total = float(G.sum())
    if not total > 0:
        raise ValueError(f"effective_field: layer {layer!r}'s unit {used} has a zero gradient "
                         "on every input")
    box = inside = analytic_radius = area = None
    if analytic is not None and not analytic.is_global and used:
        centre = tuple(a.center(i) for a, i in zip(analytic.axes, used, strict=True))
        box = analytic.clipped_box(used, spatial)
        window = tuple(slice(lo, hi + 1) for lo, hi in box)
        inside = float(G[window].sum()) / total
        analytic_radius = max(max(c - lo, hi - c) + 0.5 for c, (lo, hi) in zip(centre, box,
                                                                                strict=True))
    else:
        centre = tuple((n - 1) / 2 for n in spatial)
    radius = radius_holding(G, centre, share, metric)
    if box is not None:
        dist = _distances(spatial, centre, metric)
        window = tuple(slice(lo, hi + 1) for lo, hi in box)
        area = float((dist[window] + 0.5 <= radius + 1e-9).mean())
    return EffectiveField(layer or "", used, int(array.shape[0]), kind, metric, share, centre,
                          box, inside, radius, analytic_radius, area, G)


def reinitialised(model: Module, seed: int = 0) -> Module:
    """A copy of ``model`` with fresh (untrained) weights: every module's own
    ``reset_parameters`` (PyTorch's initialisation), run under the global seed ``seed``."""
    import wally

    fresh = copy.deepcopy(model)
    wally.manual_seed(seed)
    for module in fresh.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    for name, buffer in fresh.named_buffers():
        if name.endswith("running_mean"):
            buffer.array[...] = 0
        elif name.endswith("running_var"):
            buffer.array[...] = 1
    return fresh


def effective_fields(model: Module, input_size: Sequence[int] | None = None,
                     layer: str | None = None, **options: Any) -> dict[str, EffectiveField]:
    """:func:`effective_field` for the model as it is (``"trained"``) and for a
    :func:`reinitialised` copy (``"untrained"``), on the same inputs."""
    seed = int(options.get("seed", 0))
    return {
        "trained": effective_field(model, input_size, layer, **options),
        "untrained": effective_field(reinitialised(model, seed), input_size, layer, **options),
    }


# ----- the theory: √n against n ---------------------------------------------------------------
@dataclass(frozen=True)
class StackRadii:
    """For stacks of ``n = 1 … N`` random ``3 × 3`` stride-1 convolutions: the analytic radius
    (``n + ½``), the effective radius holding ``share`` of the mass, and the exponents ``b`` of
    least-squares fits ``radius ≈ a·nᵇ`` in log-log (over ``n ≥ fit_from``)."""

    depths: tuple[int, ...]
    analytic: tuple[float, ...]
    effective: tuple[float, ...]
    share: float
    relu: bool
    seeds: int
    fit_from: int
    analytic_exponent: float
    effective_exponent: float

    def to_dict(self) -> dict[str, Any]:
        return {"depths": list(self.depths), "analytic": list(self.analytic),
                "effective": list(self.effective), "share": self.share, "relu": self.relu,
                "seeds": self.seeds, "fit_from": self.fit_from,
                "analytic_exponent": self.analytic_exponent,
                "effective_exponent": self.effective_exponent}

    def __str__(self) -> str:
        rows = [f"{'n':>4} {'analytic':>9} {'effective':>10}"]
        rows += [f"{n:>4} {a:>9g} {e:>10.2f}"
                 for n, a, e in zip(self.depths, self.analytic, self.effective, strict=True)]
        kind = "with ReLU" if self.relu else "linear"
        rows.append(f"fitted exponents (n ≥ {self.fit_from}, {kind}, {self.seeds} seeds, "
                    f"{100 * self.share:g} % share): analytic {self.analytic_exponent:.3f}, "
                    f"effective {self.effective_exponent:.3f} (theory: 1 and 0.5)")
        return "\n".join(rows)


def _exponent(depths: Sequence[int], radii: Sequence[float]) -> float:
    ln_n = xp.log(xp.asarray(depths, dtype=xp.float64))
    ln_r = xp.log(xp.asarray(radii, dtype=xp.float64))
    return float(xp.polyfit(ln_n, ln_r, 1)[0])


def stack_radii(depth: int, relu: bool = False, *, channels: int = 4, seeds: int = 8,
                share: float = 0.95, fit_from: int | None = None,
                seed: int = 0) -> StackRadii:
    """Measure the analytic and effective (Chebyshev) radii of the centre unit of stacks of
    ``n = 1 … depth`` random ``3 × 3`` convolutions (stride 1, padding 1, no bias, weights
    ``N(0, g/fan_in)``, ``g`` = 2 with ReLU else 1; a ReLU between convolutions when
    ``relu``), ``channels`` wide, on an image large enough that no field reaches its border.
    ``G`` (each draw normalised to mass 1) is averaged over ``seeds`` draws of weights and of
    a standard normal input, and fitted as in :class:`StackRadii` over ``n ≥ fit_from``
    (default ``depth // 4``: the 95 % radius of a shallow stack is capped by its small box,
    so the fitted exponent approaches ½ from above as ``depth`` grows: about 0.6 at 24).

    Example::

        >>> r = stack_radii(24)
        >>> round(r.analytic_exponent, 2), round(r.effective_exponent, 2)
        (0.96, 0.58)
    """
    from wally import nn

    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
        raise ValueError(f"stack_radii: depth must be an int ≥ 2, got {depth!r}")
    if fit_from is None:
        fit_from = max(1, depth // 4)
    if not isinstance(fit_from, int) or not 1 <= fit_from < depth:
        raise ValueError(f"stack_radii: fit_from must be in [1, {depth - 1}], got {fit_from!r}")
    share = _check_share(share, "stack_radii")
    size = 2 * depth + 3
    centre = (size - 1) // 2
    maps = [xp.zeros((size, size)) for _ in range(depth)]
    rng = xp.random.default_rng(seed)
    for _ in range(seeds):
        layers: list[Module] = []
        for n in range(depth):
            conv = nn.Conv2d(1 if n == 0 else channels, channels, 3, padding=1, bias=False)
            gain = 2.0 if relu else 1.0  # keeps the activations' scale (He, Glorot)
            fan_in = math.prod(conv.weight.shape[1:])
            conv.weight.array[...] = rng.standard_normal(conv.weight.shape) * math.sqrt(
                gain / fan_in)
            layers.append(conv)
            if relu:
                layers.append(nn.ReLU())
        x = Tensor(rng.standard_normal((1, 1, size, size)).astype(xp.float32),
                   requires_grad=True)
        with enable_grad():
            outputs = []
            h = x
            for module in layers:
                module.requires_grad_(False)
                h = module(h)
                if isinstance(module, nn.Conv2d):
                    outputs.append(h)
            for n, out in enumerate(outputs):
                x.grad = None
                grad = xp.zeros(out.shape, dtype=out.dtype)
                grad[0, :, centre, centre] = 1
                out.backward(grad, retain_graph=n < depth - 1)
                assert x.grad is not None
                magnitude = xp.abs(x.grad.array[0, 0].astype(xp.float64))
                if magnitude.sum() > 0:  # a ReLU stack may cut every path: skip that draw
                    maps[n] += magnitude / magnitude.sum()  # every draw weighs the same
    depths = tuple(range(1, depth + 1))
    analytic = tuple(n + 0.5 for n in depths)  # the (2n + 1)-pixel box
    effective = tuple(radius_holding(m, (centre, centre), share) for m in maps)
    fit = slice(fit_from - 1, None)
    return StackRadii(depths, analytic, effective, share, relu, seeds, fit_from,
                      _exponent(depths[fit], analytic[fit]),
                      _exponent(depths[fit], effective[fit]))
