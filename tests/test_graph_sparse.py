"""The sparse product and the graph layers against float64 central differences, dense-matrix
references written out with loops, and each other (the two product kernels); bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn
from wally.geometric import SparseMatrix, spmm
from wally.geometric import utils as gutils
from wally.geometric.sparse import kernel, use_kernel
from wally.testing import gradcheck


def _random_graph(seed, n=7, m=16, weighted=True):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n - 1, size=(2, m))  # node n-1 isolated
    loops = index[0] == index[1]
    index[1, loops] = (index[0, loops] + 1) % (n - 1)
    index[:, :2] = [[1, 2], [1, 2]]  # self loops already there (one per node: where a node has
    # two, PyG's indexed write gives the overwritten one a gradient too, and so does wally)
    index = np.concatenate([index, index[:, 2:4]], axis=1)  # duplicates
    weight = rng.uniform(0.2, 2.0, size=index.shape[1]) if weighted else None
    return index, weight, rng.standard_normal((n, 3))


def _dense_gcn_reference(index, weight, x, theta, bias, improved=False):
    """Kipf & Welling with dense matrices and explicit loops: A_hat = D^-1/2 (A + I) D^-1/2,
    A[target, source] summed over duplicates; an existing loop keeps its (last) weight."""
    n = x.shape[0]
    w = np.ones(index.shape[1]) if weight is None else weight
    fill = 2.0 if (improved and weight is not None) else 1.0
    a = np.zeros((n, n))
    loop = np.full(n, fill)
    for e in range(index.shape[1]):
        source, target = index[:, e]
        if source == target:
            loop[source] = w[e]
        else:
            a[target, source] += w[e]
    for i in range(n):
        a[i, i] = loop[i]
    deg = a.sum(axis=1)
    d = np.where(deg > 0, deg, 1.0) ** -0.5 * (deg > 0)
    a_hat = d[:, None] * a * d[None, :]
    return a_hat @ x @ theta.T + bias


@pytest.mark.parametrize("improved", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_gcnconv_against_dense_loops(improved, weighted):
    index, weight, x = _random_graph(3, weighted=weighted)
    conv = nn.GCNConv(3, 4, improved=improved).double()
    conv.bias.data = wally.randn(4, dtype=wally.float64)
    ww = None if weight is None else wally.tensor(weight)
    out = conv(wally.tensor(x), wally.tensor(index), ww)
    expected = _dense_gcn_reference(index, weight, x, conv.lin.weight.detach().numpy(),
                                    conv.bias.detach().numpy(), improved)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sparse_product_against_dense_loops():
    index, weight, x = _random_graph(4)
    a = SparseMatrix(index[1], index[0], wally.tensor(weight), (7, 7))
    dense = np.zeros((7, 7))
    for e in range(index.shape[1]):
        dense[index[1, e], index[0, e]] += weight[e]
    np.testing.assert_allclose((a @ wally.tensor(x)).numpy(), dense @ x, rtol=1e-12)
    np.testing.assert_allclose(a.to_dense().numpy(), dense, rtol=1e-12)
    np.testing.assert_allclose((a.t() @ wally.tensor(x)).numpy(), dense.T @ x, rtol=1e-12)


@pytest.mark.parametrize("name", ["numpy", "scipy"])
def test_sparse_product_gradcheck(name):
    index, weight, x = _random_graph(5)
    values = wally.tensor(weight, requires_grad=True)
    dense = wally.tensor(x, requires_grad=True)
    with use_kernel(name):
        assert kernel() == name
        gradcheck(lambda v, d: spmm(SparseMatrix(index[1], index[0], v, (7, 7)), d),
                  values, dense)


@settings(max_examples=25, derandomize=True)
@given(n=st.integers(1, 30), m=st.integers(0, 80), f=st.integers(1, 5), seed=st.integers(0, 99))
def test_numpy_and_scipy_kernels_give_the_same_numbers(n, m, f, seed):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(2, m))
    weight = rng.standard_normal(m).astype(np.float32)
    x = rng.standard_normal((n, f)).astype(np.float32)
    results = []
    for name in ("numpy", "scipy"):
        with use_kernel(name):
            v, d = wally.tensor(weight, requires_grad=True), wally.tensor(x, requires_grad=True)
            out = SparseMatrix(index[1], index[0], v, (n, n)) @ d
            out.backward(wally.ones(n, f))
            results.append((out.detach().numpy(), v.grad.numpy(), d.grad.numpy()))
    for ours, theirs in zip(results[0], results[1]):
        assert ours.dtype == theirs.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("layer", ["gcn", "gcn_improved", "lg", "sage"])
def test_layers_gradcheck_in_float64(layer):
    index, weight, x = _random_graph(6)
    index_t = wally.tensor(index)
    make = {"gcn": lambda: nn.GCNConv(3, 2), "gcn_improved": lambda: nn.GCNConv(3, 2, True),
            "lg": lambda: nn.LGConv(), "sage": lambda: nn.SAGEConv(3, 2, normalize=True)}
    conv = make[layer]().double()
    x_t = wally.tensor(x, requires_grad=True)
    params = [p for p in conv.parameters()]
    if layer == "sage":
        def fn(x_in, *ps):
            return conv(x_in, index_t)
        gradcheck(fn, x_t, *params)
    else:
        w_t = wally.tensor(weight, requires_grad=True)

        def fn(x_in, w_in, *ps):
            return conv(x_in, index_t, w_in)
        gradcheck(fn, x_t, w_t, *params)


def test_degree_and_self_loop_helpers():
    index = wally.tensor([[0, 1, 1, 2], [1, 1, 0, 1]])
    assert gutils.degree(index[1], 4).tolist() == [1.0, 3.0, 0.0, 0.0]
    new_index, new_weight = gutils.add_remaining_self_loops(
        index, wally.tensor([1.0, 5.0, 2.0, 3.0]), fill_value=2.0, num_nodes=3)
    assert new_index.tolist() == [[0, 1, 2, 0, 1, 2], [1, 0, 1, 0, 1, 2]]
    assert new_weight.tolist() == [1.0, 2.0, 3.0, 2.0, 5.0, 2.0]
    loops, _ = gutils.add_self_loops(index, num_nodes=3)
    assert loops.shape == (2, 7)


def test_gcn_norm_improved_fills_2_only_with_edge_weights_as_pyg():
    """PyG 2.8.1's numbers (printed by torch_geometric's gcn_norm): without edge weights the
    loops weigh 1 whatever ``improved`` says; with weights, 2."""
    index = wally.tensor([[0, 1, 2, 2], [1, 0, 0, 2]])
    _, plain = gutils.gcn_norm(index, None, 4, improved=True)
    np.testing.assert_allclose(plain.numpy(), [0.4082, 0.4082, 0.5774, 0.3333, 0.5, 1.0, 1.0],
                               atol=1e-4)
    _, weighted = gutils.gcn_norm(index, wally.ones(4), 4, improved=True)
    np.testing.assert_allclose(weighted.numpy(), [0.2887, 0.2887, 0.5, 0.5, 0.6667, 1.0, 1.0],
                               atol=1e-4)


# Bad input: one clear error naming the layer, the expected and the actual value.

@pytest.mark.parametrize("layer", [lambda: nn.GCNConv(3, 2), lambda: nn.LGConv(),
                                   lambda: nn.SAGEConv(3, 2)])
def test_bad_edge_index(layer):
    conv, x = layer(), wally.randn(4, 3)
    name = type(conv).__name__
    with pytest.raises(ValueError, match=rf"{name}: expected edge_index of shape \(2, E\), got "
                                         r"shape \(3, 2\)"):
        conv(x, wally.tensor([[0, 1], [1, 2], [2, 3]]))
    with pytest.raises(TypeError, match=f"{name}: expected edge_index of integers.*float32"):
        conv(x, wally.tensor([[0.0, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match=f"{name}: edge_index refers to node 4, but x has 4 "
                                         "rows.*below 4"):
        conv(x, wally.tensor([[0, 4], [1, 2]]))
    with pytest.raises(ValueError, match=f"{name}: node indices .* non-negative, got -1"):
        conv(x, wally.tensor([[0, -1], [1, 2]]))


def test_bad_features_and_weights():
    conv = nn.GCNConv(3, 2)
    index = wally.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"GCNConv: expected node features with 3 channels .*"
                                         r"got shape \(4, 5\)"):
        conv(wally.randn(4, 5), index)
    with pytest.raises(ValueError, match=r"GCNConv: expected node features x of shape "
                                         r"\(num_nodes, 3\), got shape \(3,\)"):
        conv(wally.randn(3), index)
    with pytest.raises(ValueError, match=r"GCNConv: expected edge_weight of shape \(2,\).*"
                                         r"got shape \(3,\)"):
        conv(wally.randn(3, 3), index, wally.ones(3))
    with pytest.raises(ValueError, match="GCNConv: symmetric normalisation needs non-negative "
                                         "node degrees, got degree -4 at node 1"):
        conv(wally.randn(3, 3), index, wally.tensor([-5.0, 1.0]))
    with pytest.raises(ValueError, match="LGConv: symmetric normalisation"):
        nn.LGConv()(wally.randn(3, 3), index, wally.tensor([-5.0, 1.0]))
    # without the normalisation a negative weight is fine
    nn.GCNConv(3, 2, normalize=False)(wally.randn(3, 3), index, wally.tensor([-5.0, 1.0]))
    with pytest.raises(ValueError, match="GCNConv: in_channels must be a positive integer, got 0"):
        nn.GCNConv(0, 2)
    with pytest.raises(ValueError, match="SAGEConv: aggr must be one of"):
        nn.SAGEConv(3, 2, aggr="lstm")
    with pytest.raises(ValueError, match=r"SparseMatrix: col indices must be in \[0, 2\) for "
                                         r"shape \(2, 2\), got 0 to 5"):
        SparseMatrix([0, 1], [0, 5], None, (2, 2))
    with pytest.raises(ValueError, match=r"SparseMatrix: expected values as a Tensor of shape "
                                         r"\(2,\)"):
        SparseMatrix([0, 1], [0, 1], wally.ones(3), (2, 2))
    with pytest.raises(ValueError, match=r"spmm: the dense operand must have 3 rows"):
        SparseMatrix([0], [1], None, (2, 3)) @ wally.ones(2, 1)


def test_without_scipy_the_numpy_kernel_runs(monkeypatch):
    from wally.geometric import sparse

    assert kernel() == "scipy"  # the table's first entry, scipy being installed here
    monkeypatch.setitem(sparse._AVAILABLE, "scipy", lambda: False)
    monkeypatch.setattr(sparse, "_scipy_available", lambda: False)
    assert kernel() == "numpy"
    out = SparseMatrix([0, 0, 1], [1, 2, 0], wally.tensor([1.0, 2.0, 3.0]), (2, 3)) @ \
        wally.tensor([[1.0], [10.0], [100.0]])
    assert out.tolist() == [[210.0], [3.0]]
    with pytest.raises(ImportError, match=r"use_kernel\('scipy'\) needs scipy.*pip install scipy"):
        use_kernel("scipy")
    with pytest.raises(ValueError, match=r"use_kernel: expected one of \['numpy', 'scipy'\]"):
        use_kernel("cuda")
