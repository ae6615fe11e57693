"""``Embedding``: a table of learnt vectors looked up by index (PyTorch's ``nn.Embedding``)."""

from __future__ import annotations

from typing import Any

from wally import autograd
from wally.creation import empty
from wally.device import device as _check_device
from wally.functional import sparse as S
from wally.nn import init
from wally.nn.module import Module
from wally.nn.parameter import Parameter
from wally.tensor import Tensor

__all__ = ["Embedding"]


class Embedding(Module):
    r"""A lookup table: row :math:`i` of ``weight`` is the vector of index :math:`i`,
    :math:`y_{j\ldots} = W_{x_{j\ldots}}`.

    ``weight`` ``(num_embeddings, embedding_dim)`` starts as :math:`\mathcal{N}(0, 1)`, with
    the ``padding_idx`` row (if any) zero; that row never gets a gradient. ``max_norm``
    renormalises the rows a batch reads, in place, as in PyTorch. ``sparse=True`` is refused:
    wally's gradients are dense.

    Shape:
        - Input: ``(*)``, integer indices.  - Output: ``(*, embedding_dim)``.

    Example::

        >>> table = nn.Embedding(10, 3, padding_idx=0)
        >>> table(wally.tensor([[1, 2, 0], [4, 3, 9]])).shape
        wally.Size([2, 3, 3])
    """

    weight: Parameter

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Tensor | None = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        for what, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"Embedding: {what} must be a non-negative integer, got {n!r}")
        if sparse:
            raise ValueError(
                "Embedding: sparse=True (sparse gradients) is not supported in wally; use "
                "sparse=False, which gives the same values with a dense weight gradient"
            )
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = S._padding_idx("Embedding", padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, dtype=dtype),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"Embedding: expected _weight of shape ({num_embeddings}, {embedding_dim}), "
                    f"got shape {tuple(_weight.shape)}"
                )
            # The given tensor's memory, not a copy, as in PyTorch.
            self.weight = Parameter(_weight.detach(), requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        # N(0, 1), as PyTorch: the padding row is then zeroed, since it never learns.
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with autograd.no_grad():
                self.weight.array[self.padding_idx] = 0
                self.weight._bump_version()

    def forward(self, input: Tensor) -> Tensor:
        return S.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An ``Embedding`` holding a copy of the 2-D ``embeddings``; ``freeze=True`` (the
        default) keeps it from learning (``weight.requires_grad`` is False). The
        ``padding_idx`` row is kept as given, not zeroed, as in PyTorch.

        Example::

            >>> table = nn.Embedding.from_pretrained(wally.tensor([[1.0, 2.0], [3.0, 4.0]]))
            >>> table(wally.tensor([1])).tolist()
            [[3.0, 4.0]]
        """
        if embeddings.ndim != 2:
            raise ValueError(
                f"Embedding.from_pretrained: expected a 2-D embeddings tensor (num_embeddings, "
                f"embedding_dim), got shape {tuple(embeddings.shape)}"
            )
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)
