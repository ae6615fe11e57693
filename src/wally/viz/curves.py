"""Training curves: loss and accuracy per epoch, from a run's ``metrics.jsonl``."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wally.viz._output import Picture, matplotlib_figure, save_figure

__all__ = ["plot_curves", "read_metrics", "CURVE_COLORS"]

CURVE_COLORS = {"train": "#1f77b4", "val": "#d62728"}
"""Train curves are blue, validation curves red."""


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl``; see :func:`wally.io.metrics.read_metrics`."""
    from wally.io.metrics import read_metrics as read

    return read(path)


def _records(metrics: Any) -> list[dict[str, Any]]:
    if isinstance(metrics, str | os.PathLike):
        return read_metrics(metrics)
    if hasattr(metrics, "records"):              # a wally.train.History
        return [dict(r) for r in metrics.records]
    if isinstance(metrics, Iterable):
        return [dict(r) for r in metrics if isinstance(r, Mapping)]
    raise TypeError(f"plot_curves: expected a metrics.jsonl path, a History or a list of "
                    f"records, got {type(metrics).__name__}")


def _values(records: list[dict[str, Any]], key: str) -> list[float]:
    values = []
    for record in records:
        value = record.get(key)
        values.append(float(value) if isinstance(value, int | float) else math.nan)
    return values


def plot_curves(metrics: Any, path: str | os.PathLike[str], *, title: str | None = None,
                val_label: str = "validation", reference: dict[str, float] | None = None
                ) -> Picture:
    """Plot loss (left) and accuracy (right) per epoch, train in blue and validation in red.

    ``metrics`` is the path of a ``metrics.jsonl``, a :class:`wally.train.History`, or a list
    of records with ``epoch`` and any of ``train_loss``, ``val_loss``, ``train_accuracy``,
    ``val_accuracy``. Every epoch gets a marker, so a one-epoch run still shows its point.
    ``val_label`` names the held-out split in the legend (``"test"`` where it is the test
    split); ``reference`` draws each of its accuracies as a dashed line on the accuracy panel,
    labelled with its key (a baseline). ``info`` holds ``epochs`` and the ``series`` drawn
    (name → values).
    """
    from matplotlib.ticker import MaxNLocator

    where = f"{os.fspath(metrics)}: " if isinstance(metrics, str | os.PathLike) else ""
    records = _records(metrics)
    if not records:
        raise ValueError(f"plot_curves: {where}no epochs to plot (the metrics are empty)")
    for number, record in enumerate(records, 1):
        epoch = record.get("epoch", number)
        if isinstance(epoch, bool) or not isinstance(epoch, int | float) or epoch != epoch:
            raise ValueError(f"plot_curves: {where}record {number} has epoch "
                             f"{str(epoch)[:40]!r}, not a number")
    epochs = [float(r.get("epoch", i + 1)) for i, r in enumerate(records)]
    figure = matplotlib_figure((9.0, 3.6))
    loss_axes = figure.add_axes((0.07, 0.14, 0.40, 0.70))
    accuracy_axes = figure.add_axes((0.57, 0.14, 0.40, 0.70))
    series: dict[str, list[float]] = {}
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        drawn = False
        for split, label in (("train", "train"), ("val", val_label)):
            values = _values(records, f"{split}_{metric}")
            if all(math.isnan(v) for v in values):
                continue
            series[f"{split}_{metric}"] = values
            axes.plot(epochs, values, "-o", color=CURVE_COLORS[split], label=label,
                      markersize=5, linewidth=1.5)
            drawn = True
        if metric == "accuracy":
            for name, value in (reference or {}).items():
                axes.axhline(value, color="black", linestyle="--", linewidth=1,
                             label=f"{name} ({value:.4f})")
                drawn = True
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(metric, fontsize=10)
        axes.grid(alpha=0.3)
        if drawn:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center",
                      transform=axes.transAxes, color="grey")
        if len(epochs) == 1:
            axes.set_xlim(epochs[0] - 1, epochs[0] + 1)
    if title is None and isinstance(metrics, str | os.PathLike):
        title = str(Path(metrics))
    if title:
        figure.suptitle(title, fontsize=9, y=0.97)
    return save_figure(figure, path, {"loss": loss_axes, "accuracy": accuracy_axes},
                       {"epochs": epochs, "series": series})
