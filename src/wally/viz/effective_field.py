"""The effective receptive field as pictures: the averaged gradient map of one unit with its
analytic box and the radius holding a share of the mass, and the theory's two curves (the
analytic radius grows like ``n``, the effective one like ``√n``)."""

from __future__ import annotations

import os
from typing import Any

from wally.viz._output import Picture, matplotlib_figure, save_figure

__all__ = ["plot_effective_field", "plot_stack_radii"]


def _square(axes: Any, centre: tuple[float, float], half: float, **style: Any) -> None:
    from matplotlib.patches import Rectangle

    row, col = centre
    axes.add_patch(Rectangle((col - half, row - half), 2 * half, 2 * half, fill=False, **style))


def plot_effective_field(fields: dict[str, Any], path: str | os.PathLike[str]) -> Picture:
    """One panel per :class:`~wally.analysis.effective_field.EffectiveField` of ``fields``
    (e.g. ``{"trained": …, "untrained": …}``, 2-D maps only): ``G`` as a heatmap, the analytic
    box (cyan) and the square (or circle) of the radius holding the share (white, dashed).
    ``info`` holds each panel's radius and share inside the box."""
    for name, item in fields.items():
        if item.map.ndim != 2:
            raise ValueError(f"plot_effective_field: {name}: expected a 2-D map, got "
                             f"{item.map.ndim}-D")
    figure = matplotlib_figure((4.2 * len(fields), 4.2))
    panels = {}
    for k, (name, item) in enumerate(fields.items()):
        axes = figure.add_subplot(1, len(fields), k + 1)
        axes.imshow(item.map, cmap="magma", interpolation="nearest")
        if item.box is not None:
            (r0, r1), (c0, c1) = item.box
            from matplotlib.patches import Rectangle

            axes.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1,
                                     fill=False, edgecolor="cyan", linewidth=1.5))
        centre = (float(item.centre[0]), float(item.centre[1]))
        if item.metric == "chebyshev":
            _square(axes, centre, item.radius, edgecolor="white", linestyle="--", linewidth=1.2)
        else:
            from matplotlib.patches import Circle

            axes.add_patch(Circle((centre[1], centre[0]), item.radius, fill=False,
                                  edgecolor="white", linestyle="--", linewidth=1.2))
        inside = "" if item.share_inside is None else \
            f", {100 * item.share_inside:.1f} % in box"
        axes.set_title(f"{name}: {100 * item.share:g} % within r = {item.radius:.2f}{inside}",
                       fontsize=9)
        panels[name] = axes
    figure.tight_layout()
    info = {name: {"radius": item.radius, "share_inside": item.share_inside}
            for name, item in fields.items()}
    return save_figure(figure, path, panels, info)


def plot_stack_radii(results: list[Any], path: str | os.PathLike[str]) -> Picture:
    """The analytic and effective radii against depth ``n`` for each
    :class:`~wally.analysis.effective_field.StackRadii` of ``results`` (linear and ReLU),
    on log-log axes with the fitted exponents in the legend and ``√n`` for reference."""
    if not results:
        raise ValueError("plot_stack_radii: expected at least one StackRadii, got none")
    figure = matplotlib_figure((6.0, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    first = results[0]
    axes.plot(first.depths, first.analytic, "k-", marker="s", markersize=3,
              label=f"analytic (exponent {first.analytic_exponent:.2f})")
    for item in results:
        kind = "ReLU" if item.relu else "linear"
        axes.plot(item.depths, item.effective, marker="o", markersize=3,
                  label=f"effective, {kind} (exponent {item.effective_exponent:.2f})")
    n0 = first.depths[first.fit_from - 1]
    scale = results[0].effective[first.fit_from - 1] / n0 ** 0.5
    axes.plot(first.depths, [scale * n ** 0.5 for n in first.depths], "k:", label="∝ √n")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis in (axes.xaxis, axes.yaxis):  # plain numbers, not 6×10⁰
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("depth n (3×3 convolutions, stride 1)")
    axes.set_ylabel(f"radius holding {100 * first.share:g} % (px, Chebyshev)")
    axes.legend(fontsize=8)
    axes.set_title("Effective vs analytic receptive field (Luo et al. 2016)", fontsize=10)
    figure.tight_layout()
    info = {"analytic_exponent": first.analytic_exponent,
            "effective_exponents": [item.effective_exponent for item in results]}
    return save_figure(figure, path, {"radii": axes}, info)
