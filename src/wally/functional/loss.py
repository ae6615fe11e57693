"""Loss functions: cross-entropy and negative log-likelihood, regression and binary losses.

Every loss follows PyTorch's signature, including the deprecated ``size_average`` and
``reduce`` arguments (they still work, with PyTorch's warning), and PyTorch's reduction rules:
``'mean'`` divides by the summed class weights of the counted targets for ``cross_entropy`` and
``nll_loss``, and by the element count elsewhere.
"""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any

from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.ops import sum_to

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
]

_REDUCTIONS = ("mean", "sum", "none")


# ----- argument checking ---------------------------------------------------------------------
def _reduction(name: str, reduction: str, size_average: bool | None = None,
               reduce: bool | None = None) -> str:
    if size_average is not None or reduce is not None:
        warnings.warn(
            "size_average and reduce args will be deprecated, please use reduction='"
            + ("none" if reduce is False else "mean" if size_average is not False else "sum")
            + "' instead.",
            UserWarning,
            stacklevel=3,
        )
        if reduce is False:
            reduction = "none"
        else:
            reduction = "sum" if size_average is False else "mean"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _array(x: Any) -> ndarray:
    """The ndarray behind a Tensor, array or nested list."""
    array = getattr(x, "array", None)
    return array if isinstance(array, ndarray) else xp.asarray(x)


def _operand(x: Any) -> Any:
    """A Tensor as it is (so that a target can receive a gradient), anything else as an array."""
    return x if hasattr(x, "requires_grad") else _array(x)


def _float_input(name: str, input: Tensor, what: str = "input") -> None:
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point {what}, got dtype {input.dtype}")


def _class_weight(name: str, weight: Any, n_classes: int, dtype: Any) -> ndarray | None:
    if weight is None:
        return None
    w = _array(weight)
    if w.shape != (n_classes,):
        raise ValueError(
            f"{name}: expected a weight of shape ({n_classes},), one per class, got shape "
            f"{tuple(w.shape)}"
        )
    return w.astype(dtype, copy=False)


def _class_target(name: str, input_shape: tuple[int, ...], target: ndarray,
                  ignore_index: int) -> ndarray:
    """Check a class-index target for an input with classes on axis 1 (axis 0 if 1-D)."""
    expected = () if len(input_shape) == 1 else input_shape[:1] + input_shape[2:]
    if target.shape != expected:
        layout = "()" if len(input_shape) == 1 else "(N,)" if len(input_shape) == 2 \
            else "(N, d1, ...)"
        raise ValueError(
            f"{name}: expected a target of shape {layout} = {expected} for an input of shape "
            f"{input_shape}, got shape {tuple(target.shape)}"
        )
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: expected class indices of an integer dtype (int64) for a target of shape "
            f"{tuple(target.shape)}, got dtype {target.dtype}"
        )
    n_classes = input_shape[0 if len(input_shape) == 1 else 1]
    bad = ((target < 0) | (target >= n_classes)) & (target != ignore_index)
    if bad.any():
        raise ValueError(
            f"{name}: target class index {int(target[bad].flat[0])} is out of range for "
            f"{n_classes} classes (expected 0 <= target < {n_classes}, or "
            f"ignore_index={ignore_index})"
        )
    return target


def _check_same_shape(name: str, input: Tensor, target: Any) -> None:
    target_shape = tuple(_array(target).shape)
    if target_shape != tuple(input.shape):
        raise ValueError(
            f"{name}: expected a target of the same shape as the input {tuple(input.shape)}, "
            f"got shape {target_shape}"
        )


def _elementwise_weight(name: str, weight: Any, shape: tuple[int, ...], what: str,
                        dtype: Any) -> ndarray | None:
    """A constant weight that broadcasts to ``shape`` without enlarging it."""
    if weight is None:
        return None
    w = _array(weight)
    try:
        ok = xp.broadcast_shapes(w.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name}: expected {what} broadcastable to the input shape {shape}, got shape "
            f"{tuple(w.shape)}"
        )
    return w.astype(dtype, copy=False)


def _reduce(loss: ndarray, reduction: str, denominator: Any = None) -> ndarray:
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    count = loss.size if denominator is None else denominator
    with xp.errstate(invalid="ignore", divide="ignore"):
        return xp.asarray(total / count, dtype=loss.dtype)


def _unreduce(gy: ndarray, reduction: str, denominator: Any) -> ndarray:
    """gy · d(reduced loss)/d(elementwise loss): ``gy`` itself, or ``gy / denominator``."""
    if reduction != "mean":
        return gy
    if denominator == 0:  # nothing counted: the loss is NaN and, as in PyTorch, the grad 0
        return xp.zeros((), dtype=gy.dtype)
    return gy / denominator


def _as_ncs(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(N, C, S) for an input of shape (C,), (N, C) or (N, C, d1, ...)."""
    if len(shape) == 1:
        return 1, shape[0], 1
    n, c = shape[:2]
    s = 1
    for d in shape[2:]:
        s *= d
    return n, c, s


# ----- cross-entropy with class-index targets ------------------------------------------------
class CrossEntropy(Function):
    """ℓ_i = −w_{t_i} log softmax(x_i)_{t_i}, smoothed with ε/C of −Σ_c w_c log softmax(x_i)_c.

    Works on the input viewed as (N, C, S), classes on axis 1; backward is
    ``softmax − smoothed one-hot``, scaled by the weights.
    """

    def __init__(self, target: ndarray, weight: ndarray | None, ignore_index: int,
                 reduction: str, label_smoothing: float) -> None:
        self.target = target
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, x: ndarray) -> ndarray:
        n, c, s = _as_ncs(x.shape)
        x3 = x.reshape(n, c, s)
        valid = (self.target != self.ignore_index).reshape(n, s)
        index = xp.where(valid, self.target.reshape(n, s), 0)[:, None, :]
        valid_f = valid.astype(x.dtype)
        w_t = valid_f if self.weight is None else self.weight[index[:, 0, :]] * valid_f

        z = x3 - x3.max(axis=1, keepdims=True)
        z_t = xp.take_along_axis(z, index, axis=1)[:, 0, :]
        eps = self.label_smoothing
        if eps > 0:
            z_sum = (z if self.weight is None else z * self.weight[:, None]).sum(axis=1)
        p = xp.exp(z, out=z)
        sum_exp = p.sum(axis=1)
        log_sum = xp.log(sum_exp)
        loss = w_t * (log_sum - z_t)  # −w_t · log p_t
        if eps > 0:
            w_total = c if self.weight is None else float(self.weight.sum())
            smooth = (w_total * log_sum - z_sum) * valid_f  # −Σ_c w_c log p_c
            loss = (1.0 - eps) * loss + (eps / c) * smooth
        self.denominator = w_t.sum() if self.reduction == "mean" else None

        if self.needs_input_grad[0]:
            p /= sum_exp[:, None, :]
            self.p, self.index, self.w_t, self.valid_f = p, index, w_t, valid_f
            self.x_shape = x.shape
        out_shape = self.target.shape if len(x.shape) > 1 else ()
        return _reduce(loss.reshape(out_shape), self.reduction, self.denominator)

    def backward(self, gy: ndarray) -> ndarray:
        n, c, s = self.p.shape
        g = _unreduce(gy, self.reduction, self.denominator)
        g = xp.broadcast_to(xp.reshape(g, (n, s)) if g.ndim else g, (n, s))
        eps = self.label_smoothing
        w_total = c if self.weight is None else float(self.weight.sum())
        gw_t = g * self.w_t
        coef = (1.0 - eps) * gw_t
        if eps > 0:
            g_valid = g * self.valid_f
            coef = coef + (eps / c) * w_total * g_valid
        gx = self.p * coef[:, None, :]
        at_target = xp.take_along_axis(gx, self.index, axis=1) - (1.0 - eps) * gw_t[:, None, :]
        xp.put_along_axis(gx, self.index, at_target, axis=1)
        if eps > 0:
            w = 1.0 if self.weight is None else self.weight[:, None]
            gx -= (eps / c) * g_valid[:, None, :] * w
        return gx.reshape(self.x_shape)


# ----- cross-entropy with class-probability targets ------------------------------------------
class CrossEntropyProbs(Function):
    """ℓ_i = −Σ_c w_c q_ic log softmax(x_i)_c with q = (1 − ε) target + ε / C."""

    def __init__(self, weight: ndarray | None, reduction: str, label_smoothing: float) -> None:
        self.weight = weight
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, x: ndarray, target: ndarray) -> ndarray:
        n, c, s = _as_ncs(x.shape)
        x3 = x.reshape(n, c, s)
        self.target_dtype = target.dtype
        q = target.astype(x.dtype, copy=False).reshape(n, c, s)
        eps = self.label_smoothing
        if eps > 0:
            q = q * (1.0 - eps) + eps / c
        wq = q if self.weight is None else q * self.weight[:, None]
        z = x3 - x3.max(axis=1, keepdims=True)
        log_p = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        loss = -(log_p * wq).sum(axis=1)
        need_x, need_t = self.needs_input_grad
        if need_x:
            self.wq = wq
        if need_x or need_t:
            self.log_p = log_p
        self.x_shape, self.t_shape = x.shape, target.shape
        self.denominator = n * s
        out_shape = x.shape[:1] + x.shape[2:] if len(x.shape) > 1 else ()
        return _reduce(loss.reshape(out_shape), self.reduction, self.denominator)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_t = self.needs_input_grad
        n, c, s = self.log_p.shape
        g = _unreduce(gy, self.reduction, self.denominator)
        g3 = (xp.reshape(g, (n, s)) if g.ndim else xp.broadcast_to(g, (n, s)))[:, None, :]
        gx = gt = None
        if need_x:
            # ∂ℓ/∂x_c = p_c Σ_k w_k q_k − w_c q_c
            gx = xp.exp(self.log_p) * self.wq.sum(axis=1, keepdims=True) - self.wq
            gx = (gx * g3).reshape(self.x_shape)
        if need_t:
            scale = -(1.0 - self.label_smoothing) * g3
            w = 1.0 if self.weight is None else self.weight[:, None]
            gt = (self.log_p * w * scale).reshape(self.t_shape).astype(self.target_dtype,
                                                                         copy=False)
        return gx, gt


def cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,
                  size_average: bool | None = None, ignore_index: int = -100,
                  reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    r"""Cross-entropy between softmax(``input``) and ``target``, from unnormalised logits.

    With class indices :math:`t_i` and label smoothing :math:`\varepsilon` over :math:`C`
    classes, each counted sample (``target != ignore_index``) contributes

    .. math::
        \ell_i = -(1-\varepsilon)\, w_{t_i} \log p_{i,t_i}
                 - \tfrac{\varepsilon}{C} \textstyle\sum_c w_c \log p_{i,c},
        \qquad p_i = \mathrm{softmax}(x_i),

    and ``'mean'`` divides :math:`\sum_i \ell_i` by :math:`\sum_i w_{t_i}` over counted
    samples (PyTorch's rule; NaN when nothing is counted). With class probabilities (a float
    ``target`` of the input's shape) :math:`\ell_i = -\sum_c w_c q_{i,c} \log p_{i,c}`,
    :math:`q = (1-\varepsilon)\,\text{target} + \varepsilon/C`, and ``'mean'`` divides by the
    number of samples. ``log_softmax`` is taken with max-subtraction, so logits of any size
    give finite losses. The backward is fused (:math:`p - q` scaled by the weights).

    Shape:
        - Input: ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``: logits, classes on axis 1.
        - Target: class indices (integer dtype) of shape ``()``, ``(N,)`` or
          ``(N, d1, ..., dK)``, in ``[0, C)`` or equal to ``ignore_index``; or class
          probabilities of the input's shape.
        - Weight: ``(C,)``.
        - Output: a scalar, or the target's per-sample shape if ``reduction='none'``.

    Example::

        >>> logits = wally.randn(4, 10, requires_grad=True)
        >>> F.cross_entropy(logits, wally.tensor([1, 0, 4, 9])).backward()
    """
    name = "cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    shape = tuple(input.shape)
    if not shape:
        raise ValueError(f"{name}: expected an input of shape (C,), (N, C) or (N, C, d1, ...), "
                         f"got a 0-d input")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"{name}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}"
        )
    n_classes = shape[0 if len(shape) == 1 else 1]
    w = _class_weight(name, weight, n_classes, input.dtype)
    target_array = _array(target)
    if target_array.shape == shape:
        if target_array.dtype.kind != "f":
            raise TypeError(
                f"{name}: a target of the input's shape {shape} holds class probabilities and "
                f"must be floating point, got dtype {target_array.dtype}"
            )
        return CrossEntropyProbs(w, reduction, float(label_smoothing))(input, _operand(target))
    try:
        target_array = _class_target(name, shape, target_array, ignore_index)
    except ValueError as error:
        if target_array.dtype.kind == "f" and "shape" in str(error):
            raise ValueError(
                f"{name}: a floating-point target holds class probabilities and must have the "
                f"input's shape {shape}; class indices need an integer target of shape "
                f"{shape[:1] + shape[2:] if len(shape) > 1 else ()}; got a {target_array.dtype} "
                f"target of shape {tuple(target_array.shape)}"
            ) from None
        raise
    fn = CrossEntropy(target_array, w, int(ignore_index), reduction, float(label_smoothing))
    return fn(input)


# ----- negative log-likelihood ---------------------------------------------------------------
class NLLLoss(Function):
    """ℓ_i = −w_{t_i} x_{i, t_i} on the input viewed as (N, C, S)."""

    def __init__(self, target: ndarray, weight: ndarray | None, ignore_index: int,
                 reduction: str) -> None:
        self.target = target
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, x: ndarray) -> ndarray:
        n, c, s = _as_ncs(x.shape)
        valid = (self.target != self.ignore_index).reshape(n, s)
        index = xp.where(valid, self.target.reshape(n, s), 0)[:, None, :]
        valid_f = valid.astype(x.dtype)
        w_t = valid_f if self.weight is None else self.weight[index[:, 0, :]] * valid_f
        loss = -w_t * xp.take_along_axis(x.reshape(n, c, s), index, axis=1)[:, 0, :]
        self.denominator = w_t.sum() if self.reduction == "mean" else None
        if self.needs_input_grad[0]:
            self.index, self.w_t, self.x_shape = index, w_t, x.shape
        out_shape = self.target.shape if len(x.shape) > 1 else ()
        return _reduce(loss.reshape(out_shape), self.reduction, self.denominator)

    def backward(self, gy: ndarray) -> ndarray:
        n, c, s = _as_ncs(self.x_shape)
        g = _unreduce(gy, self.reduction, self.denominator)
        g = xp.reshape(g, (n, s)) if g.ndim else g
        gx = xp.zeros((n, c, s), dtype=gy.dtype)
        xp.put_along_axis(gx, self.index, (-g * self.w_t)[:, None, :], axis=1)
        return gx.reshape(self.x_shape)


def nll_loss(input: Tensor, target: Any, weight: Tensor | None = None,
             size_average: bool | None = None, ignore_index: int = -100,
             reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    r"""Negative log-likelihood of class indices, from log-probabilities:
    :math:`\ell_i = -w_{t_i}\, x_{i, t_i}` for ``target != ignore_index`` (0 otherwise).

    ``'mean'`` divides by :math:`\sum_i w_{t_i}` over counted samples, as PyTorch does.
    ``nll_loss(log_softmax(x, 1), t)`` equals ``cross_entropy(x, t)``.

    Shape:
        - Input: ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``: log-probabilities.
        - Target: integer class indices, ``()``, ``(N,)`` or ``(N, d1, ..., dK)``.
        - Output: a scalar, or the target's shape if ``reduction='none'``.

    Example::

        >>> log_p = F.log_softmax(wally.randn(3, 5), dim=1)
        >>> F.nll_loss(log_p, wally.tensor([1, 0, 4]))
    """
    name = "nll_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    shape = tuple(input.shape)
    if not shape:
        raise ValueError(f"{name}: expected an input of shape (C,), (N, C) or (N, C, d1, ...), "
                         f"got a 0-d input")
    n_classes = shape[0 if len(shape) == 1 else 1]
    w = _class_weight(name, weight, n_classes, input.dtype)
    target_array = _class_target(name, shape, _array(target), ignore_index)
    return NLLLoss(target_array, w, int(ignore_index), reduction)(input)


# ----- regression losses ---------------------------------------------------------------------
class PointwiseLoss(Function):
    """ℓ = w · (x − y)² or w · |x − y|, elementwise with broadcasting."""

    def __init__(self, kind: str, weight: ndarray | None, reduction: str) -> None:
        self.kind = kind
        self.weight = weight
        self.reduction = reduction

    def forward(self, x: ndarray, target: ndarray) -> ndarray:
        self.target_dtype = target.dtype
        diff = x - target.astype(x.dtype, copy=False)
        loss = diff * diff if self.kind == "mse" else xp.abs(diff)
        if self.weight is not None:
            loss *= self.weight
        self.denominator = None if self.weight is None else self.weight.sum()
        if any(self.needs_input_grad):
            self.diff, self.x_shape, self.t_shape = diff, x.shape, target.shape
        return _reduce(loss, self.reduction, self.denominator)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_t = self.needs_input_grad
        denominator = self.diff.size if self.denominator is None else self.denominator
        g = _unreduce(gy, self.reduction, denominator)
        if self.kind == "mse":
            gd = (2.0 * g) * self.diff
        else:
            gd = xp.sign(self.diff) * g
        if self.weight is not None:
            gd = gd * self.weight
        gx = sum_to(gd, self.x_shape) if need_x else None
        gt = sum_to(-gd, self.t_shape).astype(self.target_dtype, copy=False) if need_t else None
        return gx, gt


def _pointwise(name: str, kind: str, input: Tensor, target: Any, size_average: bool | None,
               reduce: bool | None, reduction: str, weight: Any) -> Tensor:
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    input_shape, target_shape = tuple(input.shape), tuple(_array(target).shape)
    try:
        xp.broadcast_shapes(input_shape, target_shape)
    except ValueError:
        raise ValueError(
            f"{name}: the target shape {target_shape} does not broadcast with the input shape "
            f"{input_shape}"
        ) from None
    if target_shape != input_shape:
        warnings.warn(
            f"{name}: using a target size {target_shape} that is different to the input size "
            f"{input_shape}. This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
    w = None
    if weight is not None:
        w = _array(weight)
        if w.shape != input_shape:
            raise ValueError(
                f"{name}: expected a weight of the input's shape {input_shape}, got shape "
                f"{tuple(w.shape)}"
            )
        w = w.astype(input.dtype, copy=False)
    return PointwiseLoss(kind, w, reduction)(input, _operand(target))


def mse_loss(input: Tensor, target: Any, size_average: bool | None = None,
             reduce: bool | None = None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    r"""Mean squared error: :math:`\ell_i = w_i (x_i - y_i)^2`, then ``reduction``.

    ``'mean'`` divides by the element count, or by :math:`\sum_i w_i` when ``weight`` is given
    (PyTorch's rule). A target of another shape broadcasts, with PyTorch's warning.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape.  - Weight: ``(*)``.
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.mse_loss(wally.tensor([1.0, 2.0]), wally.tensor([1.0, 4.0]))
        tensor(2.)
    """
    return _pointwise("mse_loss", "mse", input, target, size_average, reduce, reduction, weight)


def l1_loss(input: Tensor, target: Any, size_average: bool | None = None,
            reduce: bool | None = None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    r"""Mean absolute error: :math:`\ell_i = w_i |x_i - y_i|`, then ``reduction``.

    The gradient at :math:`x_i = y_i` is 0 (``sign(0)``), as in PyTorch; ``'mean'`` and
    broadcasting follow :func:`mse_loss`.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape.  - Weight: ``(*)``.
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.l1_loss(wally.tensor([1.0, 2.0]), wally.tensor([1.0, 4.0]))
        tensor(1.)
    """
    return _pointwise("l1_loss", "l1", input, target, size_average, reduce, reduction, weight)


# ----- binary cross-entropy ------------------------------------------------------------------
class BCEWithLogits(Function):
    """ℓ = w · [(1 − y) x + (1 + (pw − 1) y) · softplus(−x)], softplus(−x) = −log σ(x)."""

    def __init__(self, weight: ndarray | None, pos_weight: ndarray | None,
                 reduction: str) -> None:
        self.weight = weight
        self.pos_weight = pos_weight
        self.reduction = reduction

    def forward(self, x: ndarray, target: ndarray) -> ndarray:
        self.target_dtype = target.dtype
        y = target.astype(x.dtype, copy=False)
        # log(1 + exp(−x)) = max(−x, 0) + log1p(exp(−|x|)): finite for any x.
        softplus_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        log_weight = None if self.pos_weight is None else (self.pos_weight - 1.0) * y + 1.0
        loss = (1.0 - y) * x + (softplus_neg if log_weight is None else log_weight * softplus_neg)
        if self.weight is not None:
            loss = loss * self.weight
        if any(self.needs_input_grad):
            self.x, self.y, self.softplus_neg, self.log_weight = x, y, softplus_neg, log_weight
        return _reduce(loss, self.reduction)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_t = self.needs_input_grad
        x, y = self.x, self.y
        g = _unreduce(gy, self.reduction, x.size)
        if self.weight is not None:
            g = g * self.weight
        gx = gt = None
        if need_x:
            # σ(−x) = exp(−softplus(x)) = exp(−softplus(−x) − x), stable for any x
            sig_neg = xp.exp(-self.softplus_neg - x)
            lw = 1.0 if self.log_weight is None else self.log_weight
            gx = ((1.0 - y) - lw * sig_neg) * g
            gx = xp.broadcast_to(gx, x.shape) if gx.shape != x.shape else gx
        if need_t:
            gt = -x if self.pos_weight is None else \
                (self.pos_weight - 1.0) * self.softplus_neg - x
            gt = xp.broadcast_to(gt * g, x.shape).astype(self.target_dtype)
        return gx, gt


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Tensor | None = None,
                                     size_average: bool | None = None,
                                     reduce: bool | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    r"""Binary cross-entropy from logits, without forming :math:`\sigma(x)`:

    .. math::
        \ell = -w\,[\,p_w\, y \log \sigma(x) + (1 - y) \log(1 - \sigma(x))\,]
             = w\,[(1 - y)\,x + (1 + (p_w - 1)\,y)\,\mathrm{softplus}(-x)],

    with :math:`\mathrm{softplus}(-x) = \max(-x, 0) + \log(1 + e^{-|x|})`, finite for any
    logit. ``pos_weight`` (:math:`p_w`) weights positives per class and broadcasts along the
    last axis; ``weight`` broadcasts to the input. Both are constants (no gradient). Backward:
    :math:`\partial x = w\,[(1 + (p_w - 1) y)\,\sigma(x) - p_w y]`, which is
    :math:`w\,(\sigma(x) - y)` without ``pos_weight``.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape, values in [0, 1].
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.binary_cross_entropy_with_logits(wally.tensor([0.0]), wally.tensor([1.0]))
        tensor(0.6931)
    """
    name = "binary_cross_entropy_with_logits"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    _check_same_shape(name, input, target)
    shape = tuple(input.shape)
    w = _elementwise_weight(name, weight, shape, "a weight", input.dtype)
    pw = _elementwise_weight(name, pos_weight, shape, "a pos_weight", input.dtype)
    return BCEWithLogits(w, pw, reduction)(input, _operand(target))


class BCE(Function):
    """ℓ = −w · [y log x + (1 − y) log(1 − x)], each log clamped at −100 as in PyTorch."""

    def __init__(self, weight: ndarray | None, reduction: str) -> None:
        self.weight = weight
        self.reduction = reduction

    def forward(self, x: ndarray, target: ndarray) -> ndarray:
        self.target_dtype = target.dtype
        y = target.astype(x.dtype, copy=False)
        with xp.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100.0)
            log_1mx = xp.maximum(xp.log1p(-x), -100.0)
        loss = -(y * log_x + (1.0 - y) * log_1mx)
        if self.weight is not None:
            loss = loss * self.weight
        if any(self.needs_input_grad):
            self.x, self.y, self.log_x, self.log_1mx = x, y, log_x, log_1mx
        return _reduce(loss, self.reduction)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_t = self.needs_input_grad
        x, y = self.x, self.y
        g = _unreduce(gy, self.reduction, x.size)
        if self.weight is not None:
            g = g * self.weight
        gx = gt = None
        if need_x:
            # PyTorch's backward: (x − y) / max(x (1 − x), 1e-12)
            gx = xp.broadcast_to(g * (x - y) / xp.maximum(x * (1.0 - x), 1e-12), x.shape)
        if need_t:
            gt = xp.broadcast_to(g * (self.log_1mx - self.log_x), x.shape)
            gt = gt.astype(self.target_dtype)
        return gx, gt


def binary_cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    r"""Binary cross-entropy between probabilities ``input`` and ``target``:
    :math:`\ell = -w\,[\,y \log x + (1 - y) \log(1 - x)\,]`, each log clamped at -100 as in
    PyTorch. Prefer :func:`binary_cross_entropy_with_logits`, which is stable for any logit.

    Shape:
        - Input: ``(*)``, values in [0, 1].  - Target: ``(*)``, the same shape.
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.binary_cross_entropy(wally.tensor([0.5]), wally.tensor([1.0]))
        tensor(0.6931)
    """
    name = "binary_cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    _check_same_shape(name, input, target)
    x = input.array
    if x.size and not ((x >= 0) & (x <= 1)).all():
        bad = x[~((x >= 0) & (x <= 1))].flat[0]
        raise ValueError(
            f"{name}: expected every input element between 0 and 1 (probabilities; use "
            f"binary_cross_entropy_with_logits for logits), got {bad}"
        )
    w = _elementwise_weight(name, weight, tuple(input.shape), "a weight", input.dtype)
    return BCE(w, reduction)(input, _operand(target))
