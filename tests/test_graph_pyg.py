"""PyTorch Geometric is the oracle: with the same weights, wally's GCNConv, LGConv and SAGEConv
give PyG's outputs and gradients (x, weights, edge weights) over random graphs, for every flag,
and their state_dicts load both ways."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn

pyg = pytest.importorskip("torch_geometric", reason="pip install torch-geometric to compare")
warnings.filterwarnings("ignore", message=".*(torch-scatter|torch-sparse|pyg-lib).*")


@st.composite
def graphs(draw, weighted=None):
    """A random directed multigraph: duplicate edges, self loops (sometimes one node with two
    loops), isolated nodes, and positive edge weights or none."""
    n = draw(st.integers(1, 9))
    m = draw(st.integers(0, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    index = rng.integers(0, n, size=(2, m))
    if draw(st.booleans()) and m:  # self loops already present
        loops = rng.integers(0, m, size=max(1, m // 4))
        index[1, loops] = index[0, loops]
    if draw(st.booleans()) and m:  # duplicate edges
        index = np.concatenate([index, index[:, : max(1, m // 3)]], axis=1)
    if weighted is None:
        weighted = draw(st.booleans())
    weight = rng.uniform(0.1, 2.0, size=index.shape[1]).astype(np.float32) if weighted else None
    features = draw(st.integers(1, 4))
    x = rng.standard_normal((n, features)).astype(np.float32)
    return index, weight, x


def _load_into_pyg(torch, ours, theirs):
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})


def _compare(torch, ours, theirs, index, weight, x, with_weight=True, zero_grads=False):
    wx = wally.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    args_w, args_t = [wally.tensor(index)], [torch.tensor(index)]
    ww = tw = None
    if with_weight and weight is not None:
        ww = wally.tensor(weight, requires_grad=True)
        tw = torch.tensor(weight, requires_grad=True)
        args_w.append(ww)
        args_t.append(tw)
    out_w, out_t = ours(wx, *args_w), theirs(tx, *args_t)
    np.testing.assert_allclose(out_w.detach().numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    probe = np.random.default_rng(1).standard_normal(out_w.shape).astype(np.float32)
    (out_w * wally.tensor(probe)).sum().backward()
    (out_t * torch.tensor(probe)).sum().backward()
    if zero_grads:  # x / |x| of one channel is ±1: the true gradient is 0, as wally's is;
        # PyTorch's rounding leaves up to ~1e-4 there (more, the smaller |x|)
        assert not wx.grad.numpy().any()
        assert np.abs(tx.grad.numpy()).max() < 1e-2
        return
    np.testing.assert_allclose(wx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    if ww is not None:
        np.testing.assert_allclose(ww.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-5)
    params_t = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), params_t[key].grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=key)


@settings(max_examples=60, derandomize=True)
@given(graph=graphs(), improved=st.booleans(), self_loops=st.booleans(),
       normalize=st.booleans(), bias=st.booleans(), out=st.integers(1, 3))
def test_gcnconv_matches_pyg(torch, graph, improved, self_loops, normalize, bias, out):
    index, weight, x = graph
    flags = dict(improved=improved, add_self_loops=self_loops, normalize=normalize, bias=bias)
    if self_loops and not normalize:  # refused by both
        with pytest.raises(ValueError, match="normalization"):
            pyg.nn.GCNConv(x.shape[1], out, **flags)
        with pytest.raises(ValueError, match="GCNConv: add_self_loops=True needs normalize"):
            nn.GCNConv(x.shape[1], out, **flags)
        return
    ours = nn.GCNConv(x.shape[1], out, **flags)
    if bias:
        ours.bias.data = wally.randn(out)  # PyG starts it at zero: make it count
    theirs = pyg.nn.GCNConv(x.shape[1], out, **flags)
    _load_into_pyg(torch, ours, theirs)
    _compare(torch, ours, theirs, index, weight, x)


@settings(max_examples=40, derandomize=True)
@given(graph=graphs(), normalize=st.booleans())
def test_lgconv_matches_pyg(torch, graph, normalize):
    index, weight, x = graph
    _compare(torch, nn.LGConv(normalize), pyg.nn.LGConv(normalize), index, weight, x)


@settings(max_examples=40, derandomize=True)
@given(graph=graphs(weighted=False), aggr=st.sampled_from(["mean", "sum", "add"]),
       normalize=st.booleans(), root_weight=st.booleans(), bias=st.booleans(),
       out=st.integers(1, 3))
def test_sageconv_matches_pyg(torch, graph, aggr, normalize, root_weight, bias, out):
    index, _, x = graph
    flags = dict(aggr=aggr, normalize=normalize, root_weight=root_weight, bias=bias)
    ours = nn.SAGEConv(x.shape[1], out, **flags)
    theirs = pyg.nn.SAGEConv(x.shape[1], out, **flags)
    _load_into_pyg(torch, ours, theirs)
    _compare(torch, ours, theirs, index, None, x, zero_grads=normalize and out == 1)


@settings(max_examples=40, derandomize=True)
@given(graph=graphs(), improved=st.booleans(), self_loops=st.booleans())
def test_gcn_norm_matches_pyg(torch, graph, improved, self_loops):
    from torch_geometric.nn.conv.gcn_conv import gcn_norm as pyg_norm

    from wally.geometric.utils import gcn_norm

    index, weight, x = graph
    ww = None if weight is None else wally.tensor(weight)
    tw = None if weight is None else torch.tensor(weight)
    ours = gcn_norm(wally.tensor(index), ww, x.shape[0], improved, self_loops)
    theirs = pyg_norm(torch.tensor(index), tw, x.shape[0], improved, self_loops)
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())
    np.testing.assert_allclose(ours[1].numpy(), theirs[1].numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make", [
    lambda lib: lib.GCNConv(5, 3),
    lambda lib: lib.GCNConv(5, 3, bias=False),
    lambda lib: lib.SAGEConv(5, 3),
    lambda lib: lib.SAGEConv(5, 3, root_weight=False, bias=False),
    lambda lib: lib.LGConv(),
])
def test_state_dicts_load_both_ways_and_reprs_match(torch, make):
    ours, theirs = make(nn), make(pyg.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    # wally -> PyG
    _load_into_pyg(torch, ours, theirs)
    # PyG -> wally: fresh PyG weights into a fresh wally layer
    theirs_fresh, ours_fresh = make(pyg.nn), make(nn)
    ours_fresh.load_state_dict({k: wally.tensor(v.numpy())
                                for k, v in theirs_fresh.state_dict().items()})
    for key, value in theirs_fresh.state_dict().items():
        np.testing.assert_array_equal(ours_fresh.state_dict()[key].detach().numpy(), value.numpy())
    index = np.array([[0, 1, 2, 3, 3], [1, 2, 0, 0, 4]])
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)  # node 5 isolated
    for o, t in ((ours, theirs), (ours_fresh, theirs_fresh)):
        np.testing.assert_allclose(o(wally.tensor(x), wally.tensor(index)).detach().numpy(),
                                   t(torch.tensor(x), torch.tensor(index)).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_cached_gcnconv_reuses_the_first_graph(torch):
    index = np.array([[0, 1, 2], [1, 2, 0]])
    x = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    ours, theirs = nn.GCNConv(2, 2, cached=True), pyg.nn.GCNConv(2, 2, cached=True)
    _load_into_pyg(torch, ours, theirs)
    ours(wally.tensor(x), wally.tensor(index))
    theirs(torch.tensor(x), torch.tensor(index))
    other = np.array([[0], [1]])  # ignored: the cache from the first call is used, as in PyG
    np.testing.assert_allclose(ours(wally.tensor(x), wally.tensor(other)).detach().numpy(),
                               theirs(torch.tensor(x), torch.tensor(other)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
