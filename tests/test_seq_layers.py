"""Causal convolution, masked global average pooling, pad_sequence and pad_collate: against
PyTorch, naive loops and float64 central differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn
from wally.data import lengths_to_mask, pad_collate
from wally.nn import functional as F
from wally.nn.utils.rnn import pad_sequence
from wally.testing import gradcheck


def causal_loop(x, w, b, stride, dilation, groups):
    """y[n, o, t] = b[o] + Σ_c Σ_a w[o, c, a] x[n, g·C/G + c, s·t − d·(k − 1 − a)] (x = 0
    before step 0)."""
    n, c_in, length = x.shape
    c_out, per_group, k = w.shape
    out_per_group = c_out // groups
    steps = (length - 1) // stride + 1
    y = np.zeros((n, c_out, steps))
    for i in range(n):
        for o in range(c_out):
            g = o // out_per_group
            for t in range(steps):
                total = 0.0 if b is None else b[o]
                for c in range(per_group):
                    for a in range(k):
                        src = stride * t - dilation * (k - 1 - a)
                        if src >= 0:
                            total += w[o, c, a] * x[i, g * per_group + c, src]
                y[i, o, t] = total
    return y


@st.composite
def causal_cases(draw):
    groups = draw(st.sampled_from([1, 2]))
    return dict(n=draw(st.integers(1, 2)), c_in=groups * draw(st.integers(1, 3)),
                c_out=groups * draw(st.integers(1, 3)), length=draw(st.integers(1, 12)),
                k=draw(st.integers(1, 4)), stride=draw(st.integers(1, 3)),
                dilation=draw(st.integers(1, 3)), groups=groups, bias=draw(st.booleans()))


def _operands(case, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["c_in"], case["length"])).astype(dtype)
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"], case["k"]))
    b = rng.standard_normal(case["c_out"]).astype(dtype) if case["bias"] else None
    return x, w.astype(dtype), b


@settings(max_examples=40, deadline=None)
@given(case=causal_cases())
def test_causal_conv1d_equals_torch_left_padded_conv1d_and_loop(case, torch):
    x, w, b = _operands(case)
    y = F.causal_conv1d(wally.tensor(x), wally.tensor(w), None if b is None else wally.tensor(b),
                        case["stride"], case["dilation"], case["groups"]).numpy()
    left = case["dilation"] * (case["k"] - 1)
    expected = torch.nn.functional.conv1d(
        torch.nn.functional.pad(torch.from_numpy(x), (left, 0)), torch.from_numpy(w),
        None if b is None else torch.from_numpy(b), case["stride"], 0, case["dilation"],
        case["groups"]).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, causal_loop(x, w, b, case["stride"], case["dilation"],
                                              case["groups"]), rtol=1e-4, atol=1e-4)


@settings(max_examples=10, deadline=None)
@given(case=causal_cases())
def test_causal_conv1d_gradcheck(case):
    x, w, b = _operands(case, np.float64)
    tensors = [wally.tensor(a, requires_grad=True) for a in (x, w)]
    bias = None if b is None else wally.tensor(b, requires_grad=True)
    gradcheck(lambda x, w, b: F.causal_conv1d(x, w, b, case["stride"], case["dilation"],
                                              case["groups"]), *tensors, bias)


def test_no_output_step_depends_on_a_later_input_step():
    conv = nn.CausalConv1d(2, 3, kernel_size=3, dilation=2).double()
    x = wally.randn(1, 2, 20, dtype=wally.float64, requires_grad=True)
    for t in range(20):
        x.grad = None
        conv(x)[0, :, t].sum().backward()
        grad = x.grad.numpy()[0]
        assert np.all(grad[:, t + 1:] == 0), t  # exactly zero from every future step
        assert np.any(grad[:, max(0, t - 4): t + 1] != 0)


def test_causal_conv1d_module_matches_torch_conv1d_weights(torch):
    conv = nn.CausalConv1d(3, 4, kernel_size=5, dilation=2, bias=True)
    assert repr(conv) == "CausalConv1d(3, 4, kernel_size=(5,), stride=(1,), dilation=(2,))"
    assert conv.causal_padding == 8 and not isinstance(conv, nn.Conv1d)
    reference = torch.nn.Conv1d(3, 4, 5, dilation=2)
    reference.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in
                               conv.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 3, 30)).astype(np.float32)
    expected = reference(torch.nn.functional.pad(torch.from_numpy(x), (8, 0))).detach().numpy()
    np.testing.assert_allclose(conv(wally.tensor(x)).detach().numpy(), expected, atol=1e-5)
    assert tuple(conv(wally.tensor(x[0])).shape) == (4, 30)  # unbatched (C, L)


def test_causal_conv_bad_input_names_the_layer():
    conv = nn.CausalConv1d(3, 4, kernel_size=2)
    with pytest.raises(ValueError, match=r"CausalConv1d\(3, 4.*expected input with 3 channels, "
                                         r"got 5"):
        conv(wally.randn(1, 5, 10))
    with pytest.raises(ValueError, match=r"causal_conv1d: dilation must be a positive integer"):
        F.causal_conv1d(wally.randn(1, 3, 10), wally.randn(4, 3, 2), dilation=0)
    with pytest.raises(TypeError):
        nn.CausalConv1d(3, 4, kernel_size=2, padding=1)  # no padding argument: always causal


def test_causal_conv_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from wally import onnx

    model = nn.Sequential(nn.CausalConv1d(2, 4, 3, dilation=2), nn.ReLU(),
                          nn.CausalConv1d(4, 2, 2, stride=2)).eval()
    x = wally.randn(3, 2, 17)
    path = tmp_path / "causal.onnx"
    onnx.export(model, x, str(path))
    session = ort.InferenceSession(str(path))
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-5)


def pool_loop(x, lengths):
    return np.stack([x[n, :, : lengths[n]].mean(axis=1) for n in range(x.shape[0])])


def test_masked_global_avg_pool_loop_mask_and_zero_padding_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 6))
    lengths = np.array([6, 1, 4])
    xt = wally.tensor(x, requires_grad=True)
    y = F.masked_global_avg_pool1d(xt, wally.tensor(lengths))
    np.testing.assert_allclose(y.detach().numpy(), pool_loop(x, lengths), atol=1e-12)
    mask = lengths_to_mask(wally.tensor(lengths))
    np.testing.assert_allclose(F.masked_global_avg_pool1d(xt, mask=mask).detach().numpy(),
                               y.detach().numpy())
    y.sum().backward()
    grad = xt.grad.numpy()
    for n, length in enumerate(lengths):
        assert np.all(grad[n, :, length:] == 0)
        np.testing.assert_allclose(grad[n, :, :length], 1 / length)
    np.testing.assert_allclose(nn.MaskedGlobalAvgPool1d()(xt).detach().numpy(), x.mean(-1))
    gradcheck(lambda x: F.masked_global_avg_pool1d(x, wally.tensor(lengths)),
              wally.tensor(x, requires_grad=True))


def test_masked_pool_bad_lengths_and_masks():
    x = wally.randn(2, 3, 5)
    with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.5.*got 0\.\.5"):
        F.masked_global_avg_pool1d(x, wally.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"expected lengths as 2 integers"):
        F.masked_global_avg_pool1d(x, wally.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"mask row 1 has no True step"):
        F.masked_global_avg_pool1d(x, mask=wally.tensor([[True] * 5, [False] * 5]))
    with pytest.raises(ValueError, match=r"expected an input of shape \(N, C, T\)"):
        F.masked_global_avg_pool1d(wally.randn(3, 5))


def test_pad_sequence_matches_torch_and_backward(torch):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, 3)).astype(np.float32) for n in (4, 1, 3)]
    for batch_first in (False, True):
        for side in ("right", "left"):
            seqs = [wally.tensor(a, requires_grad=True) for a in arrays]
            out = pad_sequence(seqs, batch_first=batch_first, padding_value=-1.0,
                               padding_side=side)
            expected = torch.nn.utils.rnn.pad_sequence(
                [torch.from_numpy(a) for a in arrays], batch_first=batch_first,
                padding_value=-1.0, padding_side=side)
            np.testing.assert_array_equal(out.detach().numpy(), expected.numpy())
            out.sum().backward()
            assert all(np.all(s.grad.numpy() == 1) and s.grad.shape == s.shape for s in seqs)
    with pytest.raises(ValueError, match=r"sequence 1 has shape \(2, 4\), expected trailing"):
        pad_sequence([wally.ones(3, 3), wally.ones(2, 4)])


def test_pad_collate_and_bad_items():
    (x, lengths), y = pad_collate([(wally.ones(2, 3), 1), (wally.ones(2, 5), 0)])
    assert tuple(x.shape) == (2, 2, 5) and lengths.tolist() == [3, 5] and y.tolist() == [1, 0]
    assert np.all(x.numpy()[0, :, 3:] == 0)
    with pytest.raises(ValueError, match=r"item 1 has 3 channels, expected 2"):
        pad_collate([(wally.ones(2, 3), 1), (wally.ones(3, 5), 0)])
    with pytest.raises(ValueError, match=r"expected each series as \(C, T\)"):
        pad_collate([(wally.ones(3), 1)])
