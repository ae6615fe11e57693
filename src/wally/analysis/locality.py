"""The study note's MLP argument, run: shuffle the pixels and see who cares.

A fully connected network on flattened pixels ignores where the pixels are: for a fixed
permutation ``π`` of the pixel positions, ``x'_j = x_{π(j)}``, its first layer satisfies

    W' x' = Σ_j W'_{ij} x_{π(j)} = Σ_k W_{ik} x_k = W x      with  W' = W[:, π],

and the gradient keeps that relation at every step (``∂L/∂W'_{ij} = g_i x_{π(j)} =
∂L/∂W_{i,π(j)}``), as does every element-wise optimizer (SGD, momentum, Adam). So an MLP whose
first-layer initial weights are permuted the same way, trained on the permuted images with the
same seed (the same batches in the same order), is the same function as the MLP trained on the
original images, at every step: the two runs differ only by float rounding (the sums above add
the same terms in another order). A convolution, built on locality, loses its prior: on the
permuted images the neighbours it looks at are no longer neighbours, and its accuracy drops.

:func:`locality_experiment` runs the four trainings (MLP and CNN of similar parameter count,
each on the original and the permuted images) and returns a :class:`LocalityReport`;
:func:`draw_locality` draws a few images, their permuted copies and the accuracies.

>>> report = locality_experiment("digits", epochs=5, seed=0)  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from wally.backend import ndarray, xp

DATASETS = ("digits", "fashion-mnist")
LOCALITY_MODELS = ("mlp", "cnn")


@dataclass(frozen=True)
class LocalityRow:
    """One training: which model, on which images, its test accuracy and parameter count."""

    model: str
    permuted: bool
    accuracy: float
    correct: int
    count: int
    parameters: int

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "permuted": self.permuted, "accuracy": self.accuracy,
                "correct": self.correct, "count": self.count, "parameters": self.parameters}


@dataclass
class LocalityReport:
    """The four trainings and what relates them.

    ``mlp_max_logit_difference`` is the largest ``|f(x) − f'(π x)|`` over the test logits of
    the two MLPs (float rounding only, if the argument holds); ``mlp_disagreements`` the test
    images on which their predictions differ.
    """

    dataset: str
    epochs: int
    seed: int
    image_shape: tuple[int, int, int]
    permutation: ndarray
    rows: list[LocalityRow]
    mlp_max_logit_difference: float
    mlp_disagreements: int
    examples: ndarray = field(repr=False)  # (k, H, W) original test images, for the picture

    def row(self, model: str, permuted: bool) -> LocalityRow:
        for row in self.rows:
            if row.model == model and row.permuted == permuted:
                return row
        raise KeyError(f"locality: no run of {model!r} (permuted={permuted})")

    def accuracy(self, model: str, permuted: bool) -> float:
        return self.row(model, permuted).accuracy

    def drop(self, model: str) -> float:
        """Original minus permuted test accuracy (in [−1, 1])."""
        return self.accuracy(model, False) - self.accuracy(model, True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "epochs": self.epochs, "seed": self.seed,
            "image_shape": list(self.image_shape),
            "runs": [row.to_dict() for row in self.rows],
            "drop": {model: self.drop(model) for model in LOCALITY_MODELS},
            "mlp_max_logit_difference": self.mlp_max_logit_difference,
            "mlp_disagreements": self.mlp_disagreements,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        count = self.rows[0].count
        lines = [
            f"{self.dataset}: {count} test images {'×'.join(map(str, self.image_shape))}, "
            f"{self.epochs} epochs, seed {self.seed}; pixels permuted by one fixed random "
            "permutation (the same for train and test)",
            "",
            f"{'model':<6} {'parameters':>11} {'original':>9} {'permuted':>9} {'drop':>7}",
        ]
        for model in LOCALITY_MODELS:
            original, permuted = self.row(model, False), self.row(model, True)
            lines.append(f"{model.upper():<6} {original.parameters:>11,} "
                         f"{original.accuracy:>9.2%} {permuted.accuracy:>9.2%} "
                         f"{100 * self.drop(model):>+6.2f}pt")
        lines += [
            "",
            "MLP: its first-layer initial weights permuted like the pixels, the same seed and "
            "batches: the two trainings are the same function up to float rounding (max logit "
            f"difference {self.mlp_max_logit_difference:.2g}, {self.mlp_disagreements} test "
            "predictions differ).",
            "CNN: the permutation breaks the neighbourhoods its 3×3 kernels rely on.",
        ]
        return "\n".join(lines)


# ----- data ------------------------------------------------------------------------------------
def _load(dataset: str, train: bool, data_dir: str | os.PathLike[str] | None,
          limit: int | None) -> tuple[ndarray, ndarray]:
    """float32 images (N, 1, H, W) in [0, 1] and int64 labels."""
    from wally import data

    if dataset == "digits":
        source: Any = data.Digits(root=data_dir, train=train)
    elif dataset == "fashion-mnist":
        source = data.FashionMNIST(root=data_dir if data_dir is not None else "data",
                                   train=train, download=False)
    else:
        raise ValueError(f"locality: dataset must be one of {', '.join(DATASETS)}, "
                         f"got {dataset!r}")
    images = xp.asarray(source.data)
    images = images.astype(xp.float32) / 255 if images.dtype == xp.uint8 else images.astype(
        xp.float32)
    labels = xp.asarray(source.targets).astype(xp.int64)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images[:, None], labels


def pixel_permutation(height: int, width: int, seed: int) -> ndarray:
    """The fixed random permutation ``π`` of the ``height·width`` pixel positions (row-major),
    drawn from ``numpy.random.default_rng(seed)``."""
    return xp.random.default_rng(seed).permutation(height * width)


def permute_pixels(images: ndarray, permutation: ndarray) -> ndarray:
    """``images`` (..., H, W) with pixel ``j`` (row-major) of the result the pixel
    ``permutation[j]`` of the input: ``x'_j = x_{π(j)}``, the same for every image and channel.

    **Shape:** (..., H, W) → (..., H, W).

    >>> permute_pixels(xp.arange(4.0).reshape(1, 2, 2), xp.array([3, 2, 1, 0]))[0].tolist()
    [[3.0, 2.0], [1.0, 0.0]]
    """
    height, width = images.shape[-2:]
    if sorted(permutation.tolist()) != list(range(height * width)):
        raise ValueError(f"permute_pixels: expected a permutation of {height * width} pixel "
                         f"positions, got {len(permutation)} indices")
    flat = images.reshape(*images.shape[:-2], height * width)
    return xp.ascontiguousarray(flat[..., permutation].reshape(images.shape))


# ----- models ----------------------------------------------------------------------------------
def locality_cnn(channels: int, size: int, classes: int = 10) -> Any:
    """Two 3×3 convolutions (16 and 32 channels, padding 1), each with ReLU and 2×2 max
    pooling, then one linear layer to the classes."""
    from wally import nn

    side = size // 2 // 2
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * side * side, classes),
    )


def locality_mlp(inputs: int, hidden: int, classes: int = 10) -> Any:
    """Flatten, one hidden layer of ``hidden`` ReLU units, a linear layer to the classes."""
    from wally import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def _parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def matching_hidden(inputs: int, parameters: int, classes: int = 10) -> int:
    """The hidden width whose MLP ``inputs → hidden → classes`` has the parameter count closest
    to ``parameters``: ``(inputs + 1)·h + (h + 1)·classes``."""
    return max(1, round((parameters - classes) / (inputs + 1 + classes)))


# ----- the experiment --------------------------------------------------------------------------
def _train(model: Any, x: ndarray, y: ndarray, *, epochs: int, batch_size: int, lr: float,
           seed: int) -> None:
    from wally import data, optim
    from wally.creation import from_numpy
    from wally.train import fit

    loader = data.DataLoader(data.TensorDataset(from_numpy(x), from_numpy(y)),
                             batch_size=batch_size, shuffle=True)
    fit(model, loader, optimizer=optim.Adam(model.parameters(), lr=lr), epochs=epochs,
        progress=False, seed=seed)


def _logits(model: Any, x: ndarray, batch_size: int = 500) -> ndarray:
    from wally.autograd import no_grad
    from wally.creation import from_numpy

    model.eval()
    with no_grad():
        parts = [model(from_numpy(xp.ascontiguousarray(x[i:i + batch_size]))).numpy()
                 for i in range(0, len(x), batch_size)]
    return xp.concatenate(parts)


def locality_experiment(dataset: str = "digits", epochs: int = 5, seed: int = 0, *,
                        batch_size: int = 32, lr: float = 1e-3,
                        data_dir: str | os.PathLike[str] | None = None,
                        train_limit: int | None = None, examples: int = 6) -> LocalityReport:
    """Train an MLP and a CNN of similar size on the original and on pixel-permuted images.

    The permutation ``π`` (:func:`pixel_permutation`, seeded by ``seed``) is applied to the
    training and the test images alike. Every training starts from ``wally.manual_seed(seed)``
    (same initial weights for a model on both image sets, same batch order); the permuted MLP's
    first-layer initial weights are then permuted the same way, ``W' = W[:, π]``, which makes its
    training the original one's up to float rounding (see the module's docstring). Adam,
    cross-entropy.

    Args:
        dataset: ``"digits"`` (scikit-learn's 8×8, built in) or ``"fashion-mnist"`` (28×28,
            read from ``data_dir`` or Debian's ``/usr/share/datasets/fashion-mnist``).
        train_limit: train on the first that many training images only.
        examples: test images kept in the report for the picture.
    """
    from wally import manual_seed
    from wally.autograd import no_grad

    if dataset not in DATASETS:
        raise ValueError(f"locality: dataset must be one of {', '.join(DATASETS)}, "
                         f"got {dataset!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"locality: epochs must be a positive integer, got {epochs!r}")
    x_train, y_train = _load(dataset, True, data_dir, train_limit)
    x_test, y_test = _load(dataset, False, data_dir, None)
    channels, height, width = x_train.shape[1:]
    permutation = pixel_permutation(height, width, seed)
    images = {False: (x_train, x_test),
              True: (permute_pixels(x_train, permutation), permute_pixels(x_test, permutation))}
    inputs = channels * height * width
    # the flattened (C, H, W) index of permuted input j: channel c, position π(j)
    flat_permutation = (xp.arange(channels)[:, None] * height * width
                        + permutation[None, :]).reshape(-1)

    manual_seed(seed)
    cnn_parameters = _parameters(locality_cnn(channels, height))
    hidden = matching_hidden(inputs, cnn_parameters)

    rows: list[LocalityRow] = []
    logits: dict[bool, ndarray] = {}
    for name in LOCALITY_MODELS:
        for permuted in (False, True):
            train_x, test_x = images[permuted]
            manual_seed(seed)
            if name == "cnn":
                model = locality_cnn(channels, height)
            else:
                model = locality_mlp(inputs, hidden)
                if permuted:
                    first = model[1].weight
                    with no_grad():
                        first.copy_(first[:, flat_permutation.tolist()])
            _train(model, train_x, y_train, epochs=epochs, batch_size=batch_size, lr=lr,
                   seed=seed)
            out = _logits(model, test_x)
            if name == "mlp":
                logits[permuted] = out
            correct = int((out.argmax(axis=1) == y_test).sum())
            rows.append(LocalityRow(name, permuted, correct / len(y_test), correct,
                                    len(y_test), _parameters(model)))
    gap = float(xp.abs(logits[False] - logits[True]).max())
    disagreements = int((logits[False].argmax(axis=1) != logits[True].argmax(axis=1)).sum())
    return LocalityReport(dataset, epochs, seed, (int(channels), int(height), int(width)),
                          permutation, rows, gap, disagreements,
                          examples=x_test[:examples, 0].copy())


# ----- the picture -----------------------------------------------------------------------------
def draw_locality(report: LocalityReport, path: str | os.PathLike[str]) -> Any:
    """A PNG: the report's example test images (top row), the same images with their pixels
    permuted (middle row) and the four test accuracies as bars. Returns the
    :class:`wally.viz._output.Picture` (panels ``"original_k"``, ``"permuted_k"``, ``"bars"``)."""
    from matplotlib.gridspec import GridSpec

    from wally.viz._output import matplotlib_figure, save_figure

    examples = report.examples
    permuted = permute_pixels(examples, report.permutation)
    count = len(examples)
    figure = matplotlib_figure((max(6.0, 1.2 * count), 5.6))
    grid = GridSpec(3, count, figure=figure, height_ratios=[1, 1, 1.6], hspace=0.45)
    axes: dict[str, Any] = {}
    for k in range(count):
        for row, (label, image) in enumerate((("original", examples[k]),
                                               ("permuted", permuted[k]))):
            ax = figure.add_subplot(grid[row, k])
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(label)
            axes[f"{label}_{k}"] = ax
    bars = figure.add_subplot(grid[2, :])
    positions = xp.arange(len(LOCALITY_MODELS))
    for offset, permuted_flag, colour in ((-0.2, False, "tab:blue"), (0.2, True, "tab:orange")):
        values = [report.accuracy(m, permuted_flag) for m in LOCALITY_MODELS]
        drawn = bars.bar(positions + offset, values, width=0.4, color=colour,
                         label="permuted" if permuted_flag else "original")
        bars.bar_label(drawn, labels=[f"{v:.1%}" for v in values], fontsize=8)
    bars.set_xticks(positions)
    bars.set_xticklabels([f"{m.upper()} ({report.row(m, False).parameters:,} parameters)"
                          for m in LOCALITY_MODELS])
    bars.set_ylim(0, 1.1)
    bars.set_ylabel("test accuracy")
    bars.legend(loc="lower right", fontsize=8)
    figure.suptitle(f"{report.dataset}: an MLP ignores where the pixels are, a CNN does not")
    axes["bars"] = bars
    return save_figure(figure, path, axes, info=report.to_dict())
