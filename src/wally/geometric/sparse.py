r"""A sparse matrix for graphs, and ``sparse @ dense`` with its backward.

A graph on :math:`N` nodes with edges :math:`j \to i` is a sparse :math:`N \times N` matrix.
:class:`SparseMatrix` stores it as COO (``row``, ``col``, ``values``: one entry per edge, in the
order given, duplicates kept) and builds, once, the CSR layout the product runs on: the entries
sorted by row (stably) and ``indptr``, the offset of each row's first entry.

The product :math:`Y = A X` is, row by row,

.. math::  Y_{r,:} = \sum_{e:\ \mathrm{row}_e = r} v_e \, X_{\mathrm{col}_e,:}

and its backward, for an upstream gradient :math:`G = \partial L / \partial Y`,

.. math::  \frac{\partial L}{\partial X} = A^\top G, \qquad
           \frac{\partial L}{\partial v_e} = G_{\mathrm{row}_e,:} \cdot X_{\mathrm{col}_e,:}

so edge weights can be learnt, or carry gradients from a normalisation that depends on them.

Two kernels compute a CSR product, listed in :data:`KERNELS` in the order they are tried:

=========  =================================================================================
``scipy``  ``scipy.sparse.csr_matrix @ X``: a compiled loop over the non-zeros (optional)
``numpy``  a loop over the k-th entry of every row, vectorised over the rows
=========  =================================================================================

Both add each row's entries in the same (CSR) order, so they give the same numbers.
``benchmarks/sparse_product.py`` measures them side by side; :func:`use_kernel` forces one.
"""

from __future__ import annotations

import importlib
from typing import Any

from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.tensor import Tensor

__all__ = ["SparseMatrix", "spmm", "KERNELS", "use_kernel", "kernel"]


def _csr_layout(row: ndarray, n_rows: int) -> tuple[ndarray, ndarray]:
    """``(order, indptr)``: the entries sorted stably by row, and where each row starts."""
    order = xp.argsort(row, kind="stable")
    indptr = xp.zeros(n_rows + 1, dtype=xp.int64)
    xp.cumsum(xp.bincount(row, minlength=n_rows), out=indptr[1:])
    return order, indptr


def _product_numpy(indptr: ndarray, cols: ndarray, values: ndarray, x: ndarray) -> ndarray:
    """CSR ``A @ x`` in NumPy: step ``k`` adds every row's ``k``-th entry, vectorised over rows.

    The loop runs max-degree times; each row still adds its entries one by one in CSR order,
    as scipy's compiled loop does, so the two give the same bits (``numpy.add.reduceat`` would
    add them in another order). The rows are visited by falling degree, so the rows that still
    have a ``k``-th entry are a prefix.
    """
    out = xp.zeros((len(indptr) - 1, x.shape[1]), dtype=x.dtype)
    counts = xp.diff(indptr)
    rows = xp.argsort(-counts, kind="stable")
    starts, sorted_counts = indptr[:-1][rows], counts[rows]
    for k in range(int(counts.max()) if counts.size else 0):
        active = int(xp.count_nonzero(sorted_counts > k))
        entries = starts[:active] + k
        out[rows[:active]] += x[cols[entries]] * values[entries, None]
    return out


def _product_scipy(indptr: ndarray, cols: ndarray, values: ndarray, x: ndarray) -> ndarray:
    """CSR ``A @ x`` by scipy.sparse's compiled loop (entries kept, never summed beforehand)."""
    sparse = importlib.import_module("scipy.sparse")
    matrix = sparse.csr_matrix((values, cols, indptr), shape=(len(indptr) - 1, x.shape[0]))
    return xp.ascontiguousarray(matrix @ x, dtype=x.dtype)


def _scipy_available() -> bool:
    try:
        importlib.import_module("scipy.sparse")
    except ImportError:
        return False
    return True


# The kernels in the order they are tried: scipy where it is installed, NumPy always. Forward
# product, one thread, benchmarks/sparse_product.py on the shared 2-core machine (noisy):
# Cora-sized (2,708 nodes, 13,264 entries) 16 features 6.3 ms NumPy vs 0.9 ms scipy, 1,433
# features 223 vs 44 ms; 100k nodes, 1.1M entries, 64 features 3.7 s vs 0.64 s.
KERNELS: dict[str, Any] = {"scipy": _product_scipy, "numpy": _product_numpy}
_AVAILABLE = {"scipy": _scipy_available, "numpy": lambda: True}
_forced: list[str | None] = [None]


def kernel() -> str:
    """The name of the kernel the next product runs on."""
    if _forced[0] is not None:
        return _forced[0]
    return next(name for name in KERNELS if _AVAILABLE[name]())


class use_kernel:  # noqa: N801 - a context manager, like wally.no_grad
    """Force one product kernel: ``with use_kernel("numpy"): y = A @ x`` (or call it to set it
    until the next call; ``use_kernel(None)`` goes back to the table's order)."""

    def __init__(self, name: str | None) -> None:
        if name is not None and name not in KERNELS:
            raise ValueError(f"use_kernel: expected one of {sorted(KERNELS)} or None, got {name!r}")
        if name == "scipy" and not _scipy_available():
            raise ImportError("use_kernel('scipy') needs scipy, which is not installed: "
                              "pip install scipy  (or pip install 'wally-cnn[graph]')")
        self._previous = _forced[0]
        _forced[0] = name

    def __enter__(self) -> use_kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        _forced[0] = self._previous


def _product(indptr: ndarray, cols: ndarray, values: ndarray, x: ndarray) -> ndarray:
    flat = x.reshape(x.shape[0], -1)
    out = KERNELS[kernel()](indptr, cols, values.astype(x.dtype, copy=False), flat)
    return out.reshape((len(indptr) - 1,) + x.shape[1:])


class SparseDenseProduct(Function):
    """``Y = A X`` for a fixed sparsity pattern; differentiable in the values and in ``X``."""

    def __init__(self, matrix: SparseMatrix) -> None:
        self.matrix = matrix

    def forward(self, values: ndarray, x: ndarray) -> ndarray:
        m = self.matrix
        order, indptr = m._csr()
        if self.needs_input_grad[0]:
            self.x = x
        if self.needs_input_grad[1]:
            self.values = values
        self.values_dtype = values.dtype
        return _product(indptr, m.col[order], values[order], x)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ndarray | None]:
        m = self.matrix
        grad_values = grad_x = None
        if self.needs_input_grad[0]:
            flat_g = gy.reshape(gy.shape[0], -1)
            flat_x = self.x.reshape(self.x.shape[0], -1)
            # dL/dv_e = G[row_e] · X[col_e], in blocks of edges so the gathered rows stay small
            grad_values = xp.empty(m.nnz, dtype=self.values_dtype)
            block = max(1, (1 << 20) // max(flat_x.shape[1], 1))
            for start in range(0, m.nnz, block):
                rows, cols = m.row[start:start + block], m.col[start:start + block]
                grad_values[start:start + block] = (flat_g[rows] * flat_x[cols]).sum(axis=1)
        if self.needs_input_grad[1]:
            order, indptr = m._csr_transposed()
            grad_x = _product(indptr, m.row[order], self.values[order], gy)
        return grad_values, grad_x


class SparseMatrix:
    r"""A sparse ``(n_rows, n_cols)`` matrix: entry ``e`` is ``values[e]`` at
    ``(row[e], col[e])``; duplicate positions add up, as in ``torch.sparse_coo_tensor``.

    ``values`` is a Tensor (it may require a gradient) or ``None`` for all ones.
    :meth:`from_edge_index` reads PyG's ``edge_index`` (2, E): ``A[source, target]`` is the
    edge's weight, the layout of ``torch_geometric.utils.to_torch_coo_tensor``.

    Shape:
        - ``A @ X``: ``(n_rows, n_cols) @ (n_cols, *)`` → ``(n_rows, *)``.

    Example::

        >>> A = SparseMatrix.from_edge_index(wally.tensor([[0, 1, 1], [1, 0, 2]]), num_nodes=3)
        >>> (A @ wally.ones(3, 2)).tolist()
        [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]
    """

    def __init__(self, row: Any, col: Any, values: Tensor | None, shape: tuple[int, int]) -> None:
        self.row = xp.ascontiguousarray(row, dtype=xp.int64)
        self.col = xp.ascontiguousarray(col, dtype=xp.int64)
        self.shape = (int(shape[0]), int(shape[1]))
        if self.row.ndim != 1 or self.row.shape != self.col.shape:
            raise ValueError(f"SparseMatrix: expected row and col of one shape (nnz,), got "
                             f"{self.row.shape} and {self.col.shape}")
        for what, index, bound in (("row", self.row, self.shape[0]),
                                   ("col", self.col, self.shape[1])):
            if index.size and (index.min() < 0 or index.max() >= bound):
                raise ValueError(f"SparseMatrix: {what} indices must be in [0, {bound}) for "
                                 f"shape {self.shape}, got {int(index.min())} to "
                                 f"{int(index.max())}")
        if values is None:
            values = Tensor(xp.ones(self.row.shape[0], dtype=xp.float32))
        if not isinstance(values, Tensor) or tuple(values.shape) != self.row.shape:
            raise ValueError(f"SparseMatrix: expected values as a Tensor of shape "
                             f"{self.row.shape}, got {getattr(values, 'shape', type(values))}")
        self.values = values
        self._layouts: dict[str, tuple[ndarray, ndarray]] = {}

    @classmethod
    def from_edge_index(cls, edge_index: Any, edge_weight: Tensor | None = None,
                        num_nodes: int | None = None) -> SparseMatrix:
        """``A[edge_index[0, e], edge_index[1, e]] = edge_weight[e]`` (ones when ``None``)."""
        from wally.geometric.edges import check_edge_index, num_nodes_of

        index = check_edge_index("SparseMatrix", edge_index, num_nodes)
        n = num_nodes_of(index, num_nodes)
        return cls(index[0], index[1], edge_weight, (n, n))

    def _csr(self) -> tuple[ndarray, ndarray]:
        if "csr" not in self._layouts:
            self._layouts["csr"] = _csr_layout(self.row, self.shape[0])
        return self._layouts["csr"]

    def _csr_transposed(self) -> tuple[ndarray, ndarray]:
        if "csr_t" not in self._layouts:
            self._layouts["csr_t"] = _csr_layout(self.col, self.shape[1])
        return self._layouts["csr_t"]

    @property
    def nnz(self) -> int:
        """The number of stored entries (duplicates counted)."""
        return int(self.row.shape[0])

    def t(self) -> SparseMatrix:
        """The transpose, sharing the values (and their gradient)."""
        transposed = SparseMatrix(self.col, self.row, self.values, self.shape[::-1])
        for mine, theirs in (("csr", "csr_t"), ("csr_t", "csr")):
            if mine in self._layouts:
                transposed._layouts[theirs] = self._layouts[mine]
        return transposed

    def __matmul__(self, other: Tensor) -> Tensor:
        return spmm(self, other)

    def to_dense(self) -> Tensor:
        """The dense matrix (for tests and small graphs): duplicates summed."""
        dense = xp.zeros(self.shape, dtype=self.values.array.dtype)
        xp.add.at(dense, (self.row, self.col), self.values.array)
        return Tensor(dense)

    def __repr__(self) -> str:
        return f"SparseMatrix(shape={self.shape}, nnz={self.nnz})"


def spmm(matrix: SparseMatrix, x: Tensor) -> Tensor:
    r"""``matrix @ x`` for a sparse ``matrix`` and a dense ``x``:
    :math:`Y_{r,:} = \sum_{e:\,\mathrm{row}_e = r} v_e X_{\mathrm{col}_e,:}`.

    Shape:
        - ``matrix``: ``(R, C)``; ``x``: ``(C, *)``; output ``(R, *)``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"spmm: expected a Tensor as the dense operand, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] != matrix.shape[1]:
        raise ValueError(f"spmm: the dense operand must have {matrix.shape[1]} rows (the sparse "
                         f"matrix has shape {matrix.shape}), got shape {tuple(x.shape)}")
    return SparseDenseProduct(matrix)(matrix.values, x)
