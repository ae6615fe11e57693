"""The study note's code blocks, run on wally with the imports as the only change.

Each block below is the note's code (``shared/seed``; indentation restored, Korean comments
kept). ``_run`` swaps ``import torch`` for ``import wally as torch`` and ``from torch import nn``
for ``from wally import nn``; ``from d2l import torch as d2l`` is imported from a stub, since the
note imports d2l without using it.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import wally

CORR2D = '''
import torch
from torch import nn
from d2l import torch as d2l
def corr2d(X, K):
    """Compute 2D cross-correlation."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
'''

CONV2D_BLOCK = '''
class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))
    def forward(self, x):
        return corr2d(x, self.weight) + self.bias
'''

CONV_1X1 = '''
def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    """각 채널의 2차텐서를 1차텐서로 flatten하게 만든다"""
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, h, w))
X = torch.normal(0, 1, (3, 3, 3))
K = torch.normal(0, 1, (2, 3, 1, 1))
Y1 = corr2d_multi_in_out_1x1(X, K)
Y1
'''

POOL2D = '''
import torch
from torch import nn
from d2l import torch as d2l
def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y
'''


def _run(code: str, namespace: dict | None = None) -> dict:
    code = code.replace("import torch\n", "import wally as torch\n")
    code = code.replace("from torch import nn\n", "from wally import nn\n")
    namespace = {} if namespace is None else namespace
    exec(compile(code, "<note>", "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def _d2l_stub(monkeypatch):
    d2l = types.ModuleType("d2l")
    d2l.torch = types.ModuleType("d2l.torch")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "d2l", d2l)
    monkeypatch.setitem(sys.modules, "d2l.torch", d2l.torch)  # type: ignore[attr-defined]


def test_corr2d_gives_the_notes_result():
    ns = _run(CORR2D)
    X = wally.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = wally.tensor([[0.0, 1.0], [2.0, 3.0]])
    Y = ns["corr2d"](X, K)
    assert Y.tolist() == [[19.0, 25.0], [37.0, 43.0]]
    assert Y.dtype == wally.float32


def test_corr2d_backpropagates_through_index_assignment():
    ns = _run(CORR2D)
    X = wally.randn(5, 6, dtype=wally.float64)
    K = wally.randn(2, 3, dtype=wally.float64, requires_grad=True)
    Y = ns["corr2d"](X, K)
    G = np.random.default_rng(1).standard_normal(Y.shape)
    Y.backward(wally.tensor(G))
    # dL/dK[a, b] = sum_ij G[i, j] X[i + a, j + b]
    x = X.numpy()
    expected = np.array([[(G * x[a:a + 4, b:b + 4]).sum() for b in range(3)] for a in range(2)])
    # Y is float32 (the note makes it with torch.zeros), so the gradient is float32-accurate
    np.testing.assert_allclose(K.grad.numpy(), expected, rtol=1e-5)


def test_note_conv2d_block_matches_the_library_conv():
    ns = _run(CORR2D)
    _run(CONV2D_BLOCK, ns)
    block = ns["Conv2D"]((2, 3))
    assert sorted(name for name, _ in block.named_parameters()) == ["bias", "weight"]
    X = wally.randn(6, 8)
    with wally.no_grad():
        block.bias.fill_(0.5)
    Y = block(X)
    expected = wally.nn.functional.conv2d(
        X.reshape(1, 1, 6, 8), block.weight.detach().reshape(1, 1, 2, 3)
    ).reshape(5, 6) + 0.5
    np.testing.assert_allclose(Y.detach().numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    Y.sum().backward()
    assert block.weight.grad is not None and block.bias.grad.item() == pytest.approx(30.0)


def test_1x1_convolution_is_a_sum_over_channels():
    ns = _run(CONV_1X1, {"torch": wally})
    X, K, Y1 = ns["X"], ns["K"], ns["Y1"]
    assert Y1.shape == (2, 3, 3)
    x, k = X.numpy(), K.numpy()
    definition = np.zeros((2, 3, 3), dtype=np.float64)
    for d in range(2):
        for c in range(3):
            definition[d] += k[d, c, 0, 0] * x[c]
    np.testing.assert_allclose(Y1.numpy(), definition, rtol=1e-5, atol=1e-6)
    conv = wally.nn.functional.conv2d(X.unsqueeze(0), K)[0]
    np.testing.assert_allclose(conv.numpy(), definition, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool2d_max_and_avg(mode):
    ns = _run(POOL2D)
    X = wally.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    Y = ns["pool2d"](X, (2, 2), mode)
    expected = [[4.0, 5.0], [7.0, 8.0]] if mode == "max" else [[2.0, 3.0], [5.0, 6.0]]
    assert Y.tolist() == expected
    layer = wally.nn.MaxPool2d(2, stride=1) if mode == "max" else wally.nn.AvgPool2d(2, stride=1)
    assert layer(X.reshape(1, 1, 3, 3)).reshape(2, 2).tolist() == expected
    # the package's reference pool2d is the same loop
    assert wally.pool2d(X, (2, 2), mode).tolist() == expected


def test_edge_detection_kernel_is_learned_back_from_data():
    ns = _run(CORR2D)
    X = wally.ones((6, 8))
    X[:, 2:6] = 0
    K = wally.tensor([[1.0, -1.0]])
    Y = ns["corr2d"](X, K)
    assert Y[:, 1].tolist() == [1.0] * 6 and Y[:, 5].tolist() == [-1.0] * 6
    conv2d = wally.nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2
    losses = []
    for _ in range(20):
        Y_hat = conv2d(X)
        loss = ((Y_hat - Y) ** 2).sum()
        conv2d.zero_grad()
        loss.backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        losses.append(loss.item())
    assert losses[-1] < 0.01, losses
    np.testing.assert_allclose(conv2d.weight.data.reshape((1, 2)).numpy(), [[1.0, -1.0]],
                               atol=0.05)
