"""Batch normalisation, the stateless half of ``nn.BatchNorm1d/2d/3d``."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

from wally._parallel import elementwise
from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["batch_norm"]


# Large batches run on blocks of images in parallel (wally._parallel.elementwise): each image's
# rows are summed and each element computed by the same loop whichever block holds it, and the
# images' sums are added in order afterwards, so the bits are those of one thread.
def _channel_sum(a3: ndarray, b3: ndarray | None = None) -> ndarray:
    """Σ over axes 0 and 2 of an (N, C, S) array (of ``a3 · b3`` where ``b3`` is given): the
    contiguous axis first, image by image, then the batch."""
    if b3 is None:
        rows = xp.empty(a3.shape[:2], dtype=a3.dtype)
        elementwise(_sum_rows, rows, a3)
    else:
        rows = xp.empty(a3.shape[:2], dtype=xp.result_type(a3, b3))
        elementwise(_sum_products, rows, a3, b3)
    return rows.sum(axis=0)


def _sum_rows(out: ndarray, a: ndarray) -> None:
    a.sum(axis=2, out=out)


def _sum_products(out: ndarray, a: ndarray, b: ndarray) -> None:
    (a * b).sum(axis=2, out=out)


def _per_channel(fn: Any, a3: ndarray, *others: ndarray, dtype: Any = None) -> ndarray:
    """``fn(out, a3, *others)`` into a new (N, C, S) array, by blocks of images."""
    out = xp.empty(a3.shape, dtype=a3.dtype if dtype is None else dtype)
    return elementwise(fn, out, a3, *others)


def _affine(weight: ndarray, bias: ndarray | None) -> Any:
    """``out = a · γ (+ β)`` per channel, for :func:`_per_channel`."""
    scale = weight[:, None]
    shift = None if bias is None else bias[:, None]

    def apply(out: ndarray, a: ndarray) -> None:
        xp.multiply(a, scale, out=out)
        if shift is not None:
            out += shift

    return apply


def _scaled_stats(
    x3: ndarray, count: int, eps: float
) -> tuple[ndarray, ndarray, ndarray, ndarray] | None:
    """``(mean, var, x̂, 1/σ)`` of a finite batch whose sums overflowed its dtype (float32
    values near ±3e38: ``Σx²`` is inf, and x̂ came out 0): each channel is divided by its
    largest magnitude and the statistics are taken in float64, so x̂ is right (±1 for
    ``[3e38, −3e38]``) even where σ² itself is beyond the dtype.  ``None`` for an input that
    holds NaN or inf, whose statistics are rightly non-finite."""
    if not xp.isfinite(x3).all():
        return None
    dtype = x3.dtype
    scale = xp.abs(x3).max(axis=(0, 2)).astype(xp.float64)
    scale[scale == 0] = 1.0
    xs = x3 / scale[:, None]  # float64 (scale is), each channel within [-1, 1]
    mean_s = _channel_sum(xs) / count
    xs -= mean_s[:, None]
    var_s = _channel_sum(xs * xs) / count
    root = xp.sqrt(var_s + eps / (scale * scale))
    xs /= root[:, None]
    with xp.errstate(over="ignore"):  # σ² beyond the dtype is inf there, as PyTorch keeps it
        var = (var_s * scale * scale).astype(dtype)
        invstd = (1.0 / (root * scale)).astype(dtype)
    return (mean_s * scale).astype(dtype), var, xs.astype(dtype), invstd


def _non_finite(name: str, stat: ndarray) -> None:
    """A running statistic that overflowed: an ``AnomalyError`` under ``detect_anomaly``, else a
    warning (eval mode would divide by an infinite variance and give the bias everywhere)."""
    from wally import autograd

    kind = "nan" if xp.isnan(stat).any() else "inf"
    channels = xp.flatnonzero(~xp.isfinite(stat))[:8].tolist()
    message = (
        f"batch_norm: {name} became {kind} in channels {channels} (the batch's statistics are "
        f"beyond {stat.dtype}); evaluation with these running statistics will be wrong: "
        f"scale the input down or keep the layer in float64"
    )
    if autograd._anomaly["enabled"]:
        raise autograd.AnomalyError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=5)


class BatchNorm(Function):
    """y = (x − μ) / √(σ² + ε) · γ + β per channel, on the input viewed as (N, C, S).

    Training normalises with the batch statistics (μ, biased σ²) and updates the running
    statistics in place; evaluation uses the running statistics as constants.
    """

    def __init__(self, running_mean: ndarray | None, running_var: ndarray | None,
                 training: bool, momentum: float, eps: float) -> None:
        self.running_mean = running_mean
        self.running_var = running_var
        self.training = training
        self.momentum = momentum
        self.eps = eps

    def forward(self, x: ndarray, weight: ndarray | None, bias: ndarray | None) -> ndarray:
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1)
        count = n * x3.shape[2]
        dtype = x.dtype
        need_x, need_w, need_b = self.needs_input_grad
        self.x_shape = x.shape
        self.count = count
        self.weight = weight

        if self.training:
            with xp.errstate(over="ignore"):  # an overflow is caught and redone just below
                mean = _channel_sum(x3) / count
                centre = mean[:, None]
                xhat = _per_channel(lambda out, a: xp.subtract(a, centre, out=out), x3,
                                    dtype=xp.result_type(x3, mean))
                var = _channel_sum(xhat, xhat) / count  # biased: what normalises the batch
            stats = None
            if not (xp.isfinite(mean).all() and xp.isfinite(var).all()):
                stats = _scaled_stats(x3, count, self.eps)  # the sums overflowed?
            if stats is None:
                invstd = 1.0 / xp.sqrt(var + self.eps)
                spread = invstd[:, None]
                elementwise(lambda out, a: xp.multiply(a, spread, out=out), xhat, xhat)
            else:
                mean, var, xhat, invstd = stats
            self._update_running_stats(mean, var, count)
            if weight is not None:
                y = _per_channel(_affine(weight, bias), xhat, dtype=xp.result_type(xhat, weight))
            elif bias is not None:
                shift = bias[:, None]
                y = _per_channel(lambda out, a: xp.add(a, shift, out=out), xhat,
                                 dtype=xp.result_type(xhat, bias))
            else:
                # The output must not share memory with saved state that a later op could mutate.
                y = xhat.copy() if need_x else xhat
            if need_x or need_w:
                self.xhat = xhat
            self.invstd = invstd
            return y.reshape(x.shape)

        assert self.running_mean is not None and self.running_var is not None
        mean = self.running_mean.astype(dtype, copy=False)
        invstd = 1.0 / xp.sqrt(self.running_var.astype(dtype, copy=False) + self.eps)
        scale = invstd if weight is None else weight * invstd
        shift = -mean * scale if bias is None else bias - mean * scale
        y = x3 * scale[:, None]
        y += shift[:, None]
        if need_w:
            self.x3, self.mean = x3, mean
        self.invstd = invstd
        return y.reshape(x.shape)

    def _update_running_stats(self, mean: ndarray, var: ndarray, count: int) -> None:
        m = self.momentum
        if self.running_mean is not None:
            rm = self.running_mean
            rm[...] = (1.0 - m) * rm + m * mean
        if self.running_var is not None:
            rv = self.running_var
            # The running variance estimates the population: Bessel's correction n / (n − 1).
            rv[...] = (1.0 - m) * rv + m * (var * (count / (count - 1)))
        for name, stat in (("running_mean", self.running_mean), ("running_var", self.running_var)):
            if stat is not None and not xp.isfinite(stat).all():
                _non_finite(name, stat)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_w, need_b = self.needs_input_grad
        n, c = self.x_shape[:2]
        gy3 = gy.reshape(n, c, -1)
        weight = self.weight
        gb = _channel_sum(gy3) if (need_b or (self.training and need_x)) else None
        gx = gw = None

        if self.training:
            xhat = self.xhat
            gw_full = _channel_sum(gy3, xhat)  # Σ gy·x̂, needed by the input gradient too
            if need_x:
                assert gb is not None
                # ∂x = γ/σ · (gy − mean(gy) − x̂ · mean(gy·x̂)), all means per channel.
                scale = self.invstd if weight is None else weight * self.invstd
                slope = (-gw_full / self.count)[:, None]
                mean_gy, factor = (gb / self.count)[:, None], scale[:, None]

                def input_grad(out: ndarray, xh: ndarray, g: ndarray) -> None:
                    xp.multiply(xh, slope, out=out)
                    out += g
                    out -= mean_gy
                    out *= factor

                gx = _per_channel(input_grad, xhat, gy3, dtype=xp.result_type(xhat, slope))
                gx = gx.reshape(self.x_shape)
            if need_w:
                gw = gw_full
        else:
            if need_x:
                scale = self.invstd if weight is None else weight * self.invstd
                gx = (gy3 * scale[:, None]).reshape(self.x_shape)
            if need_w:
                xhat = (self.x3 - self.mean[:, None]) * self.invstd[:, None]
                gw = _channel_sum(gy3 * xhat)

        if gw is not None and weight is not None:
            gw = gw.astype(weight.dtype, copy=False)
        if not need_b:
            gb = None
        return gx, gw, gb


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    r"""Batch normalisation over every axis but the channel axis 1:

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    In training, :math:`\mathrm{E}[x]` and the biased :math:`\mathrm{Var}[x]` are the batch's,
    per channel, and the running statistics (when given) are updated in place with PyTorch's
    convention :math:`r \leftarrow (1 - m)\,r + m\,s`, the running variance from the *unbiased*
    batch variance. In evaluation the running statistics are used. ``weight`` (:math:`\gamma`)
    and ``bias`` (:math:`\beta`) default to 1 and 0. The backward is fused; in training it is
    :math:`\partial x = \frac{\gamma}{\sigma}\bigl(\partial y - \overline{\partial y}
    - \hat x\,\overline{\partial y\,\hat x}\bigr)`, bars being per-channel means.

    Shape:
        - Input: ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        - ``running_mean``, ``running_var``, ``weight``, ``bias``: ``(C,)``.
        - Output: the input's shape.

    Example::

        >>> x = wally.randn(8, 3, 4, 4)
        >>> mean, var = wally.zeros(3), wally.ones(3)
        >>> y = F.batch_norm(x, mean, var, training=True)   # also updates mean and var
    """
    shape = tuple(input.shape)
    if not input.numel() and input.dtype.kind == "f":
        # An empty batch: nothing to normalise and the running statistics stay as they are
        # (PyTorch's rule); the output is the empty input's copy, its gradient empty too.
        from wally import ops

        return ops.clone(input)
    if input.ndim < 2:
        raise ValueError(
            f"batch_norm: expected an input with at least 2 dimensions (N, C, ...), got shape "
            f"{shape}"
        )
    channels = shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(
                f"batch_norm: expected {name} of shape ({channels},) for an input with "
                f"{channels} channels, got shape {tuple(t.shape)}"
            )
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: pass both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(
            "batch_norm: running_mean and running_var are required when training=False"
        )
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(
            f"batch_norm: momentum must be a float (nn.BatchNorm turns momentum=None into the "
            f"cumulative-average factor before calling it), got {momentum!r}"
        )
    if training and channels > 0 and math.prod(shape) // channels == 1:
        raise ValueError(
            f"batch_norm: Expected more than 1 value per channel when training, got input size "
            f"{shape}"
        )
    if input.dtype.kind != "f":
        raise TypeError(f"batch_norm: expected a floating-point input, got {input.dtype}")
    if input.dtype.itemsize < 4:
        # float16 sums overflow (65,504 is its largest value): compute in float32, as PyTorch
        # does, and give back float16; the running statistics stay float16 arrays.
        def up(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.float()

        return batch_norm(input.float(), running_mean, running_var, up(weight), up(bias),
                          training, momentum, eps).type(input.dtype)
    fn = BatchNorm(
        None if running_mean is None else running_mean.array,
        None if running_var is None else running_var.array,
        bool(training), float(momentum), float(eps),
    )
    return fn(input, weight, bias)
