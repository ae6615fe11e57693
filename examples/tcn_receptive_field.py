"""The TCN's receptive field over time: the analysis's arithmetic against a gradient probe.

``tcn`` (Bai et al. 2018; wally's default: 6 residual blocks of two causal convolutions, kernel
3, dilations 1, 2, 4, ..., 32) sees ``R = 1 + 2·(k − 1)·(2^L − 1) = 253`` steps: output step
``t`` of its blocks depends on input steps ``t − 252 … t`` and on nothing later. Two ways to
know that, compared here at every output step ``t`` of a ``--length``-step series:

- the analysis: :func:`wally.analysis.receptive_field` composes the layers' windows (size,
  jump, start), which gives the field ``[t − R + 1, t]`` of every ``t``, cut to the series;
- the probe: :func:`wally.analysis.receptive_field.probe_receptive_fields` back-propagates from
  output step ``t`` through a positive copy of the model (so no gradient cancels) and reports
  the first and last input step with a non-zero gradient.

For one step ``t`` (``--step``) the figure also shows the real model's
``|∂ output_t / ∂ input_s|`` over ``s`` (float64, a random series, untrained weights: the field
is the architecture's, not the training's): non-zero inside the analytic field, and exactly 0
at every future step ``s > t`` (causality)::

    python examples/tcn_receptive_field.py --output figures            # 400 steps, t = 350
    python examples/tcn_receptive_field.py --quick --output /tmp/tcn     # 120 steps, a look

It writes ``OUTPUT/tcn_receptive_field.png`` and prints whether the probe equals the analysis
at every step and the largest gradient any output step receives from its future.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import wally
from wally.analysis.receptive_field import input_gradient, probe_receptive_fields
from wally.analysis.receptive_field import receptive_field as analytic_field
from wally.backend import xp
from wally.models import get_model
from wally.viz import matplotlib_figure, save_figure


def field_over_time(model: Any, length: int) -> dict[str, Any]:
    """Per output step ``t``: the analytic field of ``blocks`` (cut to the series) and the
    probe's first and last input step with a non-zero gradient."""
    field = analytic_field(model, (1, length), layer="blocks").axes[0]
    analytic, probe = [], []
    for t in range(length):
        lo = field.start + field.jump * t
        analytic.append((max(0, lo), min(length - 1, lo + field.size - 1)))
        probe.append(probe_receptive_fields(model, (1, length), ["blocks"],
                                            {"blocks": (t,)})["blocks"][0])
    return {"size": field.size, "start": field.start, "analytic": analytic, "probe": probe}


def causal_gradients(model: Any, length: int, seed: int) -> tuple[Any, float]:
    """``|∂ blocks(x)_t / ∂ x_s|`` as a ``(T, T)`` array (row ``t``) for a random series, and
    the largest entry with ``s > t`` (the future)."""
    wally.manual_seed(seed)
    probe_model = model.double().eval()
    x = wally.randn(1, 1, length, dtype=wally.float64)
    rows = [abs(input_gradient(probe_model, x, layer="blocks", unit=(t,))[0, 0])
            for t in range(length)]
    grads = xp.stack(rows)
    future = float(xp.triu(grads, k=1).max(initial=0.0))
    return grads, future


def plot(report: dict[str, Any], grads: Any, step: int, path: Path) -> Path:
    """Left: the field of every output step, analysis (band) and probe (markers). Right:
    ``|∂ output_t / ∂ input_s|`` over ``s`` for ``t = step`` on a log scale, the future
    shaded."""
    length = len(report["analytic"])
    steps = xp.arange(length)
    lo, hi = (xp.asarray(v) for v in zip(*report["analytic"]))
    probe_lo, probe_hi = (xp.asarray(v) for v in zip(*report["probe"]))
    figure = matplotlib_figure((11, 4.2))
    over_time, one_step = figure.subplots(1, 2)
    over_time.fill_between(steps, lo, hi, color="#1f77b4", alpha=0.25,
                           label=f"analysis: t − {report['size'] - 1} … t")
    every = max(1, length // 40)
    over_time.plot(steps[::every], probe_lo[::every], "v", color="#d62728", markersize=4,
                   label="probe: first non-zero gradient")
    over_time.plot(steps[::every], probe_hi[::every], "^", color="#2ca02c", markersize=4,
                   label="probe: last non-zero gradient")
    over_time.axvline(step, color="grey", linestyle=":", linewidth=1)
    over_time.set(xlabel="output step t", ylabel="input steps s it depends on",
                  title="receptive field of each output step", xlim=(0, length - 1),
                  ylim=(0, length - 1))
    over_time.legend(fontsize=8, loc="upper left")
    row = grads[step]
    seen = row > 0  # a log scale: the exact zeros (all of the future) leave gaps
    one_step.plot(steps[seen], row[seen], ".-", color="#1f77b4", linewidth=0.8,
                  markersize=2, label="non-zero gradient")
    one_step.axvspan(lo[step], hi[step], color="#1f77b4", alpha=0.12,
                     label=f"analytic field [{lo[step]}, {hi[step]}]")
    one_step.axvspan(step + 0.5, length - 1, color="grey", alpha=0.25,
                     label=f"future s > {step}: max |gradient| {row[step + 1:].max(initial=0):g}")
    one_step.set(xlabel="input step s", ylabel=f"|∂ output_{step} / ∂ input_s|",
                 title=f"gradient of output step t = {step}", xlim=(0, length - 1),
                 yscale="log")
    one_step.legend(fontsize=8, loc="upper left")
    for axes in (over_time, one_step):
        axes.grid(alpha=0.3)
    figure.suptitle(f"TCN (6 blocks, kernel 3, dilations 1…32), {length} steps: field "
                    f"{report['size']} steps, causal", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path, {"over_time": over_time, "one_step": one_step}).path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=400, help="series length")
    parser.add_argument("--step", type=int, default=None,
                        help="the output step of the right panel (default: 7/8 of the length)")
    parser.add_argument("--quick", action="store_true", help="a 120-step series")
    parser.add_argument("--output", default=".", help="folder for the PNG (default: here)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    length = 120 if args.quick else args.length
    step = (7 * length) // 8 if args.step is None else args.step
    if length < 2 or not 0 <= step < length - 1:
        parser.error(f"need --length >= 2 and 0 <= --step < length - 1, got length {length}, "
                     f"step {step}")

    wally.manual_seed(args.seed)
    model = get_model("tcn", input_size=length)
    report = field_over_time(model, length)
    grads, future = causal_gradients(model, length, args.seed)
    equal = report["analytic"] == report["probe"]
    inside = grads[step, report["analytic"][step][0]:step + 1]
    path = plot(report, grads, step, Path(args.output) / "tcn_receptive_field.png")
    print(f"TCN over {length} steps: analytic field {report['size']} steps (t − "
          f"{report['size'] - 1} … t); probe {'equals it' if equal else 'DIFFERS'} at every "
          f"step; largest gradient from a future step {future:g}; at t = {step} "
          f"{int((inside > 0).sum())} of {inside.size} steps in the field have a non-zero "
          f"gradient; figure {path}")
    return {"size": report["size"], "probe_equals_analysis": equal, "future_max": future,
            "step": step, "nonzero_inside": int((inside > 0).sum()),
            "field_steps": int(inside.size), "figure": str(path)}


if __name__ == "__main__":
    main()
