"""Layer, group and instance normalisation, and local response normalisation: the stateless
half of ``nn.LayerNorm``, ``nn.GroupNorm``, ``nn.InstanceNorm1d/2d/3d`` and
``nn.LocalResponseNorm``.

Layer, group and instance normalisation are one operation on different views of the input:
the input is read as rows (``R, M``), each row is standardised with its own mean and biased
variance, and an affine map follows (per element for layer norm, per channel for the other
two). :class:`RowNorm` does it with a fused backward, as :class:`~wally.functional.norm.BatchNorm`
does for batch statistics.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.functional.norm import batch_norm

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["layer_norm", "group_norm", "instance_norm", "local_response_norm"]


class RowNorm(Function):
    """y = (x − μ_r) / √(σ²_r + ε) · γ + β, with μ_r and σ²_r (biased) over each row ``r`` of
    the input read as ``rows`` rows; γ and β broadcast as ``affine_view`` and their gradients
    sum over ``affine_axes``.

    Backward, per row (bars are means over the row's M elements, ĝ = gy·γ):
    ∂x = (ĝ − ḡ − x̂ · mean(ĝ x̂)) / σ,  ∂γ = Σ gy·x̂,  ∂β = Σ gy.
    """

    def __init__(self, rows: int, eps: float, affine_view: tuple[int, ...],
                 affine_axes: tuple[int, ...], spans: int, kind: str) -> None:
        self.kind = kind  # "layer", "group" or "instance", for the ONNX export
        self.rows = rows
        self.eps = eps
        self.affine_view = affine_view
        self.affine_axes = affine_axes
        self.spans = spans  # how many trailing axes one row covers (the receptive field's rule)
        self.stats: list[ndarray] | None = None

    def _rows(self, a: ndarray) -> ndarray:
        """``a`` as (rows, M), M explicit so that empty inputs reshape too."""
        return a.reshape(self.rows, a.size // self.rows if self.rows else 0)

    def forward(self, x: ndarray, weight: ndarray | None, bias: ndarray | None) -> ndarray:
        x2 = self._rows(x)
        self.count = count = max(x2.shape[1], 1)  # an empty row's statistics are 0, not NaN
        with xp.errstate(over="ignore", invalid="ignore"):  # overflow: redone below; inf: NaN
            mean = x2.sum(axis=1, keepdims=True) / count
            xhat = x2 - mean
            var = (xhat * xhat).sum(axis=1, keepdims=True) / count
        invstd = 1.0 / xp.sqrt(var + self.eps)
        xhat *= invstd
        if not xp.isfinite(var).all():
            _rescaled_rows(x2, self.eps, mean, var, xhat, invstd)
        if self.stats is not None:  # instance_norm's running statistics read them
            self.stats.extend((mean, var))
        xhat = xhat.reshape(x.shape)
        need_x, need_w, _ = self.needs_input_grad
        self.w_shape = None if weight is None else weight.shape
        self.b_shape = None if bias is None else bias.shape
        if need_x or need_w:
            self.xhat = xhat
        if need_x:
            self.invstd, self.weight = invstd, weight
        if weight is None and bias is None:
            return xhat.copy() if need_x or need_w else xhat
        y = xhat if weight is None else xhat * weight.reshape(self.affine_view)
        if bias is not None:
            y = y + bias.reshape(self.affine_view)
        return y

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_w, need_b = self.needs_input_grad
        gx = gw = gb = None
        if need_w:
            gw = (gy * self.xhat).sum(axis=self.affine_axes).reshape(self.w_shape)
        if need_b:
            gb = gy.sum(axis=self.affine_axes).reshape(self.b_shape)
        if need_x:
            g = gy if self.weight is None else gy * self.weight.reshape(self.affine_view)
            g2, xhat2 = self._rows(g), self._rows(self.xhat)
            gx = g2 - g2.sum(axis=1, keepdims=True) / self.count
            gx -= xhat2 * ((g2 * xhat2).sum(axis=1, keepdims=True) / self.count)
            gx *= self.invstd
            gx = gx.reshape(gy.shape)
        return gx, gw, gb


def _rescaled_rows(x2: ndarray, eps: float, mean: ndarray, var: ndarray, xhat: ndarray,
                   invstd: ndarray) -> None:
    """Redo, in place, the rows of finite values whose sums overflowed the dtype (float32
    values beyond ~1e19 square past 3.4e38, and x̂ came out 0): each such row is divided by
    its largest magnitude and its statistics taken in float64, so x̂ is right (±1.22 for
    ``[3e38, −3e38, 0]``, where PyTorch gives NaN) even where σ² itself is beyond the dtype.
    Rows holding NaN or inf keep their rightly non-finite statistics."""
    bad = xp.flatnonzero(~xp.isfinite(var[:, 0]) & xp.isfinite(x2).all(axis=1))
    if bad.size == 0:
        return
    rows = x2[bad].astype(xp.float64)
    scale = xp.abs(rows).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    rows /= scale
    mean_s = rows.mean(axis=1, keepdims=True)
    rows -= mean_s
    var_s = (rows * rows).mean(axis=1, keepdims=True)
    root = xp.sqrt(var_s + eps / (scale * scale))
    rows /= root
    with xp.errstate(over="ignore"):  # σ² beyond the dtype is inf there, as batch norm keeps it
        mean[bad] = mean_s * scale
        var[bad] = var_s * scale * scale
        invstd[bad] = 1.0 / (root * scale)
    xhat[bad] = rows


def _check_float(name: str, input: Tensor) -> None:
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {input.dtype}")


def _check_affine(name: str, params: Sequence[tuple[str, Tensor | None]],
                  shape: tuple[int, ...], input: Tensor) -> None:
    for what, t in params:
        if t is None:
            continue
        if tuple(t.shape) != shape and not (t.ndim == 1 and t.numel() == math.prod(shape)):
            raise ValueError(
                f"{name}: expected {what} of shape {shape}, got shape {tuple(t.shape)}"
            )
        if t.dtype != input.dtype:
            raise TypeError(
                f"{name}: expected input and {what} of the same dtype, got input {input.dtype} "
                f"and {what} {t.dtype}"
            )


def _half_up(fn: Any, input: Tensor, *tensors: Tensor | None) -> Tensor:
    """float16 statistics overflow (65,504): compute in float32 and give back float16, as
    PyTorch does."""
    ups = [None if t is None else t.float() for t in tensors]
    return fn(input.float(), *ups).type(input.dtype)


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int],
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    r"""Layer normalisation over the last ``len(normalized_shape)`` axes:

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    with the mean and biased variance of each sample over those axes, and ``weight``
    (:math:`\gamma`) and ``bias`` (:math:`\beta`) of shape ``normalized_shape``, element-wise.

    Shape:
        - Input: ``(*, *normalized_shape)``.  - Output: the input's shape.

    Example::

        >>> x = wally.randn(4, 10, 16)
        >>> F.layer_norm(x, (16,)).mean(-1).abs().max() < 1e-6
        tensor(True)
    """
    if isinstance(normalized_shape, int | xp.integer):
        shape: tuple[int, ...] = (int(normalized_shape),)
    elif isinstance(normalized_shape, Sequence):
        shape = tuple(normalized_shape)
    else:
        shape = (normalized_shape,)  # refused just below
    if not all(isinstance(n, int | xp.integer) and not isinstance(n, bool) for n in shape):
        raise TypeError(f"layer_norm: normalized_shape must be ints, got {normalized_shape!r}")
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ValueError(
            f"layer_norm: expected an input whose last dimensions are normalized_shape="
            f"{list(shape)}, got shape {tuple(input.shape)}"
        )
    _check_float("layer_norm", input)
    _check_affine("layer_norm", (("weight", weight), ("bias", bias)), shape, input)
    if input.dtype.itemsize < 4:
        return _half_up(lambda x, w, b: layer_norm(x, shape, w, b, eps), input, weight, bias)
    rows = math.prod(input.shape[:input.ndim - k])
    fn = RowNorm(rows, float(eps), shape, tuple(range(input.ndim - k)), k, "layer")
    return fn(input, weight, bias)


def _channel_view(ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """γ, β of shape (C,) viewed as (C, 1, ..., 1) on an (N, C, *) input, and the axes their
    gradients sum over."""
    return (-1,) + (1,) * (ndim - 2), (0,) + tuple(range(2, ndim))


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    r"""Group normalisation (Wu & He, 2018): the channels are split into ``num_groups`` groups
    and each sample's group is standardised over its channels and positions,

    .. math::
        y = \frac{x - \mathrm{E}_g[x]}{\sqrt{\mathrm{Var}_g[x] + \epsilon}} \cdot \gamma_c
            + \beta_c

    with the biased variance, then scaled and shifted per channel.

    Shape:
        - Input: ``(N, C, *)``, ``C`` divisible by ``num_groups``.
        - ``weight``, ``bias``: ``(C,)``.  - Output: the input's shape.

    Example::

        >>> F.group_norm(wally.randn(2, 6, 5, 5), 3).shape
        wally.Size([2, 6, 5, 5])
    """
    if input.ndim < 2:
        raise ValueError(
            f"group_norm: expected an input with at least 2 dimensions (N, C, *), got shape "
            f"{tuple(input.shape)}"
        )
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups <= 0:
        raise ValueError(f"group_norm: num_groups must be a positive integer, got {num_groups!r}")
    channels = input.shape[1]
    if channels % num_groups:
        raise ValueError(
            f"group_norm: expected the number of channels ({channels}) to be divisible by "
            f"num_groups={num_groups}, got input of shape {tuple(input.shape)}"
        )
    _check_float("group_norm", input)
    _check_affine("group_norm", (("weight", weight), ("bias", bias)), (channels,), input)
    if input.dtype.itemsize < 4:
        return _half_up(lambda x, w, b: group_norm(x, num_groups, w, b, eps), input, weight, bias)
    view, axes = _channel_view(input.ndim)
    fn = RowNorm(input.shape[0] * num_groups, float(eps), view, axes, input.ndim - 1, "group")
    return fn(input, weight, bias)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    r"""Instance normalisation (Ulyanov et al., 2016): each channel of each sample is
    standardised over its positions,

    .. math::
        y = \frac{x - \mathrm{E}_{n,c}[x]}{\sqrt{\mathrm{Var}_{n,c}[x] + \epsilon}} \cdot
            \gamma_c + \beta_c.

    With ``use_input_stats=False`` the running statistics are used instead (as batch norm in
    evaluation). With ``use_input_stats=True`` and running statistics given, they are updated
    in place, PyTorch's way: :math:`r \leftarrow (1 - m)\,r + m\,\bar s`, :math:`\bar s` the
    batch mean of the per-instance means, and of the per-instance *unbiased* variances.

    Shape:
        - Input: ``(N, C, *)``.  - ``running_*``, ``weight``, ``bias``: ``(C,)``.
        - Output: the input's shape.

    Example::

        >>> F.instance_norm(wally.randn(2, 3, 8, 8)).shape
        wally.Size([2, 3, 8, 8])
    """
    shape = tuple(input.shape)
    if input.ndim < 2:
        raise ValueError(
            f"instance_norm: expected an input with at least 2 dimensions (N, C, *), got shape "
            f"{shape}"
        )
    channels = shape[1]
    _check_float("instance_norm", input)
    _check_affine("instance_norm", (("weight", weight), ("bias", bias)), (channels,), input)
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(
                f"instance_norm: expected {name} of shape ({channels},), got shape "
                f"{tuple(t.shape)}"
            )
    if (running_mean is None) != (running_var is None):
        raise ValueError("instance_norm: pass both running_mean and running_var, or neither")
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"instance_norm: momentum must be a float, got {momentum!r}")
    if not use_input_stats:
        if running_mean is None:
            raise ValueError(
                "instance_norm: running_mean and running_var are required when "
                "use_input_stats=False"
            )
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    positions = math.prod(shape[2:])
    if positions <= 1:
        raise ValueError(
            f"instance_norm: expected more than 1 spatial element when training, got input "
            f"size {shape}"
        )
    if input.dtype.itemsize < 4:
        return _half_up(lambda x, w, b: instance_norm(x, running_mean, running_var, w, b,
                                                      use_input_stats, momentum, eps),
                        input, weight, bias)
    view, axes = _channel_view(input.ndim)
    fn = RowNorm(shape[0] * channels, float(eps), view, axes, input.ndim - 2, "instance")
    if running_mean is None or running_var is None:
        return fn(input, weight, bias)
    stats: list[ndarray] = []
    fn.stats = stats
    out = fn(input, weight, bias)
    fn.stats = None
    if shape[0] == 0:  # an empty batch has no statistics: the running ones stay (PyTorch: NaN)
        return out
    m = float(momentum)
    mean = stats[0].reshape(shape[0], channels).mean(axis=0)
    var = (stats[1].reshape(shape[0], channels) * (positions / (positions - 1))).mean(axis=0)
    for stat, value in ((running_mean, mean), (running_var, var)):
        stat.array[...] = (1.0 - m) * stat.array + m * value
    return out


# ----- local response normalisation ----------------------------------------------------------
def _channel_window_sum(a: ndarray, before: int, after: int) -> ndarray:
    """s_c = Σ a_{c'} for c' in [c − before, c + after] ∩ [0, C), along axis 1: one shifted
    add per tap (the window is a handful of channels)."""
    channels = a.shape[1]
    out = a.copy()
    for shift in range(1, before + 1):
        if shift < channels:
            out[:, shift:] += a[:, :channels - shift]
    for shift in range(1, after + 1):
        if shift < channels:
            out[:, :channels - shift] += a[:, shift:]
    return out


class LocalResponseNorm(Function):
    """y_c = x_c · d_c^(−β), d_c = k + α/n · Σ_{c' ∈ W(c)} x_{c'}², W(c) = [c − ⌊n/2⌋,
    c + ⌊(n − 1)/2⌋].

    ∂x_j = gy_j d_j^(−β) − (2αβ/n) x_j Σ_{c : j ∈ W(c)} gy_c x_c d_c^(−β−1)."""

    def __init__(self, size: int, alpha: float, beta: float, k: float) -> None:
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, x: ndarray) -> ndarray:
        before, after = self.size // 2, (self.size - 1) // 2
        d = _channel_window_sum(x * x, before, after)
        d *= self.alpha / self.size
        d += self.k
        scale = d ** -self.beta
        if self.needs_input_grad[0]:
            self.x, self.d, self.scale = x, d, scale
        return x * scale

    def backward(self, gy: ndarray) -> ndarray:
        x, scale = self.x, self.scale
        before, after = self.size // 2, (self.size - 1) // 2
        inner = gy * x
        inner *= scale
        inner /= self.d
        # The transposed window: c with j in W(c) are c in [j − after, j + before].
        gx = _channel_window_sum(inner, after, before)
        gx *= x
        gx *= -2.0 * self.alpha * self.beta / self.size
        gx += gy * scale
        return gx


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    r"""Local response normalisation across channels (Krizhevsky et al., 2012, AlexNet):

    .. math::
        b_c = a_c \left(k + \frac{\alpha}{n} \sum_{c'=c-\lfloor n/2 \rfloor}^{c+\lfloor (n-1)/2
        \rfloor} a_{c'}^2\right)^{-\beta}

    ``n`` = ``size``; channels outside ``[0, C)`` count as zeros (the divisor stays ``n``), as
    in PyTorch.

    Shape:
        - Input: ``(N, C, *)``, at least 3-D.  - Output: the input's shape.

    Example::

        >>> F.local_response_norm(wally.ones(1, 4, 2, 2), size=2).shape
        wally.Size([1, 4, 2, 2])
    """
    if input.ndim < 3:
        raise ValueError(
            f"local_response_norm: expected an input with 3 or more dimensions (N, C, *), got "
            f"shape {tuple(input.shape)}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}")
    _check_float("local_response_norm", input)
    return LocalResponseNorm(size, float(alpha), float(beta), float(k))(input)
