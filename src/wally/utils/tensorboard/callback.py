"""``TensorBoardCallback``: what a :func:`wally.train.fit` run logs to TensorBoard each epoch.

``fit`` calls its callbacks after every epoch with that epoch's record; this one writes, at
``global_step = epoch``:

* scalars ``loss/train``, ``loss/val``, ``accuracy/train``, ``accuracy/val``, ``lr`` and
  ``examples_per_s`` (those the record has);
* a histogram per parameter of its values, ``weights/NAME``, and of its gradient,
  ``gradients/NAME`` (the gradient of the epoch's last batch, which ``fit`` leaves in place);
* the first convolution's kernels as one image, ``kernels/NAME``: a
  :func:`wally.vision.utils.make_grid` of the kernels, each scaled to [0, 1] on its own and
  enlarged to at least 32 pixels a side so that a 5×5 kernel can be seen.
"""

from __future__ import annotations

from typing import Any

from wally.backend import xp

__all__ = ["TensorBoardCallback", "first_conv"]

_MIN_SIDE = 32  # a kernel tile is enlarged (nearest neighbour) to at least this many pixels
_MAX_KERNELS = 64


def first_conv(model: Any) -> tuple[str, Any] | None:
    """The first 2-D convolution of ``model`` in module order, ``(name, module)``, or None."""
    from wally.nn import Conv2d

    for name, module in model.named_modules():
        if isinstance(module, Conv2d):
            return name, module
    return None


def kernel_grid(weight: Any) -> Any:
    """A convolution's weight ``(C_out, C_in, kH, kW)`` as one ``(3, H, W)`` picture: RGB
    kernels where ``C_in`` is 3, else each input channel's slice as a grey tile, at most
    64 tiles, each scaled to [0, 1] by its own min and max."""
    from wally.tensor import Tensor
    from wally.vision.utils import make_grid

    array = xp.asarray(getattr(weight, "array", weight), dtype=xp.float32)
    out_channels, in_channels, height, width = array.shape
    tiles = array if in_channels == 3 else array.reshape(-1, 1, height, width)
    tiles = tiles[:_MAX_KERNELS]
    factor = max(1, -(-_MIN_SIDE // max(height, width)))
    tiles = tiles.repeat(factor, axis=2).repeat(factor, axis=3)
    columns = in_channels if in_channels not in (1, 3) and in_channels <= 8 else 8
    grid = make_grid(Tensor(xp.ascontiguousarray(tiles)), nrow=columns, padding=2,
                     normalize=True, scale_each=True, pad_value=1.0)
    return grid.array if grid.ndim == 3 else grid.array[None]


class TensorBoardCallback:
    """Log each epoch of :func:`wally.train.fit` to ``writer`` (a :class:`SummaryWriter`).

    Args:
        writer: where to log; the callback does not close it.
        model: the model being trained (for the histograms and the kernels).
        histograms: log weight and gradient histograms (default True).
        kernels: the module name of the convolution whose kernels are drawn, ``None`` for the
            first one, ``False`` for none.

    >>> writer = SummaryWriter("runs/lenet")
    >>> fit(model, train_loader, test_loader, optimizer=optimizer, epochs=5,
    ...     callbacks=[TensorBoardCallback(writer, model)])
    """

    def __init__(self, writer: Any, model: Any, *, histograms: bool = True,
                 kernels: str | bool | None = None) -> None:
        self.writer = writer
        self.model = model
        self.histograms = histograms
        self.kernels: tuple[str, Any] | None = None
        if kernels is None:
            self.kernels = first_conv(model)
        elif kernels is not False:
            from wally.nn import Conv2d

            modules = dict(model.named_modules())
            if not isinstance(modules.get(kernels), Conv2d):
                raise ValueError(f"TensorBoardCallback: {type(model).__name__} has no "
                                 f"convolution named {kernels!r}")
            self.kernels = (str(kernels), modules[kernels])

    def __call__(self, record: dict[str, Any]) -> None:
        step = int(record["epoch"])
        for key, tag in (("train_loss", "loss/train"), ("val_loss", "loss/val"),
                         ("train_accuracy", "accuracy/train"), ("val_accuracy", "accuracy/val"),
                         ("lr", "lr"), ("examples_per_s", "examples_per_s")):
            if record.get(key) is not None:
                self.writer.add_scalar(tag, record[key], step)
        if self.histograms:
            for name, parameter in self.model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", parameter, step)
                if parameter.grad is not None:
                    self.writer.add_histogram(f"gradients/{name}", parameter.grad, step)
        if self.kernels is not None:
            name, module = self.kernels
            self.writer.add_image(f"kernels/{name}", kernel_grid(module.weight), step)
        self.writer.flush()
