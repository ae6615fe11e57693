"""PyTorch's top-level forms of ops wally implements in :mod:`wally.functional` whose
``torch.<name>`` signature differs from ``torch.nn.functional.<name>``: the same computation,
the argument order, names and defaults of torch's top-level (ATen) function.

``torch.dropout(input, p, train)`` has no defaults and names its flag ``train``;
``torch.batch_norm`` takes ``weight, bias`` before the running statistics and has a
``cudnn_enabled`` flag; ``torch.embedding(weight, indices, padding_idx=-1)`` takes the table
first; ``torch.max_pool2d`` has no ``return_indices``; ``torch.adaptive_max_pool1d`` always
returns ``(values, indices)``. ``cudnn_enabled`` is accepted and ignored (there is no cuDNN).
"""

from __future__ import annotations

from collections.abc import Sequence

from wally.functional.dropout import _check_p, _masked
from wally.functional.dropout import alpha_dropout as _alpha_dropout
from wally.functional.dropout import feature_alpha_dropout as _feature_alpha_dropout
from wally.functional.linear import dropout as _dropout
from wally.functional.norm import batch_norm as _batch_norm
from wally.functional.normalization import group_norm as _group_norm
from wally.functional.normalization import instance_norm as _instance_norm
from wally.functional.normalization import layer_norm as _layer_norm
from wally.functional.pool import adaptive_max_pool1d as _adaptive_max_pool1d
from wally.functional.pool import max_pool1d as _max_pool1d
from wally.functional.pool import max_pool2d as _max_pool2d
from wally.functional.pool import max_pool3d as _max_pool3d
from wally.functional.sparse import embedding as _embedding
from wally.tensor import Tensor

__all__ = [
    "adaptive_max_pool1d", "alpha_dropout", "batch_norm", "dropout", "embedding",
    "feature_alpha_dropout", "feature_dropout", "group_norm", "instance_norm", "layer_norm",
    "max_pool1d", "max_pool2d", "max_pool3d",
]

IntOrTuple = int | Sequence[int]


def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    r"""``torch.dropout``: :math:`y = x \cdot m / (1 - p)`, :math:`m \sim \text{Bernoulli}(1-p)`
    per element when ``train``, else :math:`y = x` (:func:`wally.nn.functional.dropout`).
    **Shape:** any; the output has the input's.

    >>> wally.dropout(wally.ones(2, 3), 0.5, False)
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    """
    return _dropout(input, p, train)


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    r"""``torch.alpha_dropout``: SELU-preserving dropout, :math:`y = a(x m + \alpha'(1-m)) + b`
    when ``train`` (:func:`wally.nn.functional.alpha_dropout`). **Shape:** any; the input's.

    >>> wally.alpha_dropout(wally.ones(2), 0.5, False)
    tensor([1., 1.])
    """
    return _alpha_dropout(input, p, train)


def feature_alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    r"""``torch.feature_alpha_dropout``: alpha dropout with one draw per (sample, channel)
    (:func:`wally.nn.functional.feature_alpha_dropout`). **Shape:** ``(N, C, *)``; the input's.

    >>> wally.feature_alpha_dropout(wally.ones(1, 2, 3), 0.5, False).shape
    wally.Size([1, 2, 3])
    """
    return _feature_alpha_dropout(input, p, train)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    r"""``torch.feature_dropout``: channel dropout of ``(N, C, *)`` of any rank,
    :math:`y_{n,c} = x_{n,c}\, m_{n,c} / (1 - p)` when ``train``, else :math:`y = x`.
    **Shape:** ``(N, C, *)``; the input's.

    >>> wally.feature_dropout(wally.ones(1, 2, 3), 0.5, False).shape
    wally.Size([1, 2, 3])
    """
    p = _check_p("feature_dropout", p)
    return _masked("feature_dropout", input, p, train, False, False, True)


def batch_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None,
               running_mean: Tensor | None, running_var: Tensor | None, training: bool,
               momentum: float, eps: float, cudnn_enabled: bool) -> Tensor:
    r"""``torch.batch_norm``: :math:`y = (x - \mathrm{E}[x]) / \sqrt{\mathrm{Var}[x] + \epsilon}
    \cdot \gamma + \beta` per channel (:func:`wally.nn.functional.batch_norm`, its arguments
    in ATen's order). **Shape:** ``(N, C, *)``; the input's.

    >>> wally.batch_norm(wally.ones(2, 3), None, None, None, None, True, 0.1, 1e-5, False)
    tensor([[0., 0., 0.],
            [0., 0., 0.]])
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum,
                       eps)


def instance_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None,
                  running_mean: Tensor | None, running_var: Tensor | None,
                  use_input_stats: bool, momentum: float, eps: float,
                  cudnn_enabled: bool) -> Tensor:
    r"""``torch.instance_norm``: each (sample, channel) standardised over its positions,
    :math:`y = (x - \mathrm{E}_{n,c}[x]) / \sqrt{\mathrm{Var}_{n,c}[x] + \epsilon} \cdot
    \gamma + \beta` (:func:`wally.nn.functional.instance_norm`, ATen's order).
    **Shape:** ``(N, C, *)``; the input's.

    >>> wally.instance_norm(wally.ones(1, 2, 3), None, None, None, None, True, 0.1, 1e-5,
    ...                     False).shape
    wally.Size([1, 2, 3])
    """
    return _instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                          momentum, eps)


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int],
               weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5,
               cudnn_enable: bool = True) -> Tensor:
    r"""``torch.layer_norm``: :math:`y = (x - \mathrm{E}[x]) / \sqrt{\mathrm{Var}[x] +
    \epsilon} \cdot \gamma + \beta` over the last ``len(normalized_shape)`` axes
    (:func:`wally.nn.functional.layer_norm`). **Shape:** ``(*, *normalized_shape)``; the input's.

    >>> wally.layer_norm(wally.tensor([[1.0, 3.0]]), [2])
    tensor([[-1.0000,  1.0000]])
    """
    return _layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5,
               cudnn_enabled: bool = True) -> Tensor:
    r"""``torch.group_norm``: each sample's groups of channels standardised,
    :math:`y = (x - \mathrm{E}_g[x]) / \sqrt{\mathrm{Var}_g[x] + \epsilon} \cdot \gamma_c +
    \beta_c` (:func:`wally.nn.functional.group_norm`). **Shape:** ``(N, C, *)``; the input's.

    >>> wally.group_norm(wally.randn(2, 4, 3), 2).shape
    wally.Size([2, 4, 3])
    """
    return _group_norm(input, num_groups, weight, bias, eps)


def embedding(weight: Tensor, indices: Tensor, padding_idx: int = -1,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    r"""``torch.embedding``: :math:`y[\ldots] = W[i[\ldots]]`, the table first; rows equal to
    ``padding_idx`` (``-1``: none) get no gradient (:func:`wally.nn.functional.embedding`).
    **Shape:** ``weight (V, D)``, ``indices (*)`` -> ``(*, D)``.

    >>> wally.embedding(wally.eye(3), wally.tensor([2, 0]))
    tensor([[0., 0., 1.],
            [1., 0., 0.]])
    """
    return _embedding(indices, weight, padding_idx if padding_idx >= 0 else None,
                      scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def max_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple = (),
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
               ceil_mode: bool = False) -> Tensor:
    r"""``torch.max_pool1d``: :math:`y_i = \max_k x_{i s + k d - p}`, no ``return_indices``
    (:func:`wally.nn.functional.max_pool1d`); ``stride=()`` means the kernel size.
    **Shape:** ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_out)``.

    >>> wally.max_pool1d(wally.tensor([[1.0, 3.0, 2.0, 0.0]]), 2)
    tensor([[3., 2.]])
    """
    out: Tensor = _max_pool1d(input, kernel_size, _stride(stride), padding, dilation,
                              ceil_mode)
    return out


def max_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple = (),
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
               ceil_mode: bool = False) -> Tensor:
    r"""``torch.max_pool2d``: :math:`y_{ij} = \max_{k,l} x_{i s + k d - p,\, j s + l d - p}`,
    no ``return_indices`` (:func:`wally.nn.functional.max_pool2d`); ``stride=()`` means the
    kernel size. **Shape:** ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, H_out, W_out)``.

    >>> wally.max_pool2d(wally.ones(1, 1, 4, 4), 2).shape
    wally.Size([1, 1, 2, 2])
    """
    out: Tensor = _max_pool2d(input, kernel_size, _stride(stride), padding, dilation,
                              ceil_mode)
    return out


def max_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple = (),
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
               ceil_mode: bool = False) -> Tensor:
    r"""``torch.max_pool3d``: the maximum over each ``D×H×W`` window, no ``return_indices``
    (:func:`wally.nn.functional.max_pool3d`); ``stride=()`` means the kernel size.
    **Shape:** ``(N, C, D, H, W)`` or ``(C, D, H, W)`` -> ``(N, C, D_out, H_out, W_out)``.

    >>> wally.max_pool3d(wally.ones(1, 1, 4, 4, 4), 2).shape
    wally.Size([1, 1, 2, 2, 2])
    """
    out: Tensor = _max_pool3d(input, kernel_size, _stride(stride), padding, dilation,
                              ceil_mode)
    return out


def adaptive_max_pool1d(input: Tensor, output_size: IntOrTuple) -> tuple[Tensor, Tensor]:
    r"""``torch.adaptive_max_pool1d``: :math:`y_i = \max_{\lfloor iL/O \rfloor \le k <
    \lceil (i+1)L/O \rceil} x_k`, always returning ``(values, indices)``
    (:func:`wally.nn.functional.adaptive_max_pool1d`). **Shape:** ``(N, C, L)`` or ``(C, L)``
    -> ``(N, C, O)`` twice.

    >>> wally.adaptive_max_pool1d(wally.tensor([[1.0, 3.0, 2.0, 0.0]]), 2)
    (tensor([[3., 2.]]), tensor([[1, 2]]))
    """
    values, indices = _adaptive_max_pool1d(input, output_size, return_indices=True)
    return values, indices


def _stride(stride: IntOrTuple) -> IntOrTuple | None:
    """ATen's empty stride (its default) means the kernel size: F's ``None``."""
    if isinstance(stride, Sequence) and len(stride) == 0:
        return None
    return stride
