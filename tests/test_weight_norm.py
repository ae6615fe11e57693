"""Weight normalisation, both of PyTorch's APIs, against torch: ``_weight_norm`` and
``norm_except_dim`` (values, gradients, central differences), the forward pre-hook API
(``nn.utils.weight_norm``) and the parametrization API (``nn.utils.parametrizations``), with
their parameters, state dicts both ways, reprs and removal."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import wally
from wally import nn
from wally.nn.utils import parametrize
from wally.testing import gradcheck

torch = pytest.importorskip("torch")

DIMS = [0, 1, -1, None]


def torch_dim(dim):
    return -1 if dim is None else dim


# ----- the op --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (3, 2, 3, 3)])
@pytest.mark.parametrize("dim", [*DIMS, -2, "last"])
def test_weight_norm_op_matches_torch(shape, dim):
    dim = len(shape) - 1 if dim == "last" else dim
    rng = np.random.default_rng(0)
    v = rng.standard_normal(shape)
    g0 = torch.norm_except_dim(torch.tensor(v), 2, torch_dim(dim))
    norm = wally.norm_except_dim(wally.tensor(v), 2, dim)
    assert tuple(norm.shape) == tuple(g0.shape)  # a scalar for -1 and None: the whole tensor
    np.testing.assert_allclose(norm.numpy(), g0.numpy(), rtol=1e-12)

    g = rng.standard_normal(tuple(g0.shape))
    gw = rng.standard_normal(shape)
    tv, tg = torch.tensor(v, requires_grad=True), torch.tensor(g, requires_grad=True)
    tw = torch._weight_norm(tv, tg, torch_dim(dim))
    tw.backward(torch.tensor(gw))
    wv, wg = wally.tensor(v, requires_grad=True), wally.tensor(g, requires_grad=True)
    w = wally._weight_norm(wv, wg, dim)
    w.backward(wally.tensor(gw))
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(wv.grad.numpy(), tv.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(wg.grad.numpy(), tg.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dim", [*DIMS, 2])
def test_weight_norm_op_gradients_by_central_differences(dim):
    v = wally.randn(3, 2, 4, dtype=wally.float64, requires_grad=True)
    g = (wally.norm_except_dim(v.detach(), 2, dim) * 1.5).requires_grad_()
    gradcheck(lambda v, g: wally._weight_norm(v, g, dim), v, g)
    gradcheck(lambda v: wally.norm_except_dim(v, 2, dim), v)


def test_weight_norm_op_refuses_bad_dims_and_lengths():
    v = wally.randn(3, 4)
    with pytest.raises(IndexError, match=r"_weight_norm: dim must be None, -1 \(the whole "
                                         r"tensor\) or an axis from -2 to 1 of the 2-d weight, "
                                         r"got 2"):
        wally._weight_norm(v, wally.ones(3, 1), 2)
    with pytest.raises(ValueError, match=r"expected g with one value per norm, 3 \(shape "
                                         r"\(3, 1\)\), got shape \(4,\)"):
        wally._weight_norm(v, wally.ones(4), 0)
    with pytest.raises(IndexError, match=r"weight_norm of Linear.weight: dim must be"):
        nn.utils.parametrizations.weight_norm(nn.Linear(4, 3), dim=5)
    with pytest.raises(IndexError, match=r"weight_norm of Conv1d.weight: dim must be"):
        with pytest.warns(FutureWarning):
            nn.utils.weight_norm(nn.Conv1d(1, 2, 3), dim=-4)
    with pytest.raises(ValueError, match=r"Linear has no parameter 'scale'"):
        with pytest.warns(FutureWarning):
            nn.utils.weight_norm(nn.Linear(2, 2), name="scale")


# ----- the layers ----------------------------------------------------------------------------
LAYERS = {
    "Linear": (lambda lib: lib.nn.Linear(5, 4), (3, 5)),
    "Conv1d": (lambda lib: lib.nn.Conv1d(3, 4, 3, dilation=2), (2, 3, 9)),
    "Conv2d": (lambda lib: lib.nn.Conv2d(2, 3, (3, 2)), (2, 2, 6, 5)),
}


def pair(kind):
    """The same layer in torch and in wally (float64, torch's weights)."""
    make, shape = LAYERS[kind]
    torch.manual_seed(0)
    theirs = make(torch).double()
    ours = make(wally).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal(shape)
    return theirs, ours, x


def same_state(theirs, ours):
    ts, ws = theirs.state_dict(), ours.state_dict()
    assert list(ws) == list(ts)
    for key in ts:
        assert tuple(ws[key].shape) == tuple(ts[key].shape), key
        np.testing.assert_allclose(ws[key].numpy(), ts[key].numpy(), rtol=1e-12, err_msg=key)


def same_step(theirs, ours, x):
    """Outputs and every parameter's gradient, by name."""
    ty = theirs(torch.tensor(x))
    wy = ours(wally.tensor(x))
    np.testing.assert_allclose(wy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    (ty**2).sum().backward()
    (wy**2).sum().backward()
    tp, wp = dict(theirs.named_parameters()), dict(ours.named_parameters())
    assert list(wp) == list(tp)
    for name in tp:
        np.testing.assert_allclose(wp[name].grad.numpy(), tp[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("dim", DIMS)
def test_hook_api_matches_torch(kind, dim):
    theirs, ours, x = pair(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(theirs, dim=dim)
    with pytest.warns(FutureWarning, match="deprecated in favor of "
                                           "`wally.nn.utils.parametrizations.weight_norm`"):
        assert nn.utils.weight_norm(ours, dim=dim) is ours
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict())[-2:] == ["weight_g", "weight_v"]
    same_state(theirs, ours)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-12)
    same_step(theirs, ours, x)

    # weights move both ways: a trained torch layer's g and v into wally, and back
    with torch.no_grad():
        theirs.weight_g.mul_(1.5)
        theirs.weight_v.add_(0.25)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    same_step(theirs, ours, x)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    same_state(theirs, ours)

    torch.nn.utils.remove_weight_norm(theirs)
    assert nn.utils.remove_weight_norm(ours) is ours
    assert not ours._forward_pre_hooks and isinstance(ours.weight, nn.Parameter)
    same_state(theirs, ours)
    with pytest.raises(ValueError, match=f"weight_norm of 'weight' not found in {kind}"):
        nn.utils.remove_weight_norm(ours)


def test_hook_api_refuses_a_second_hook_and_recomputes_before_each_forward():
    layer = nn.Linear(3, 2)
    with pytest.warns(FutureWarning):
        nn.utils.weight_norm(layer)
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same "
                                           "parameter weight"):
        with pytest.warns(FutureWarning):
            nn.utils.weight_norm(layer)
    with wally.no_grad():
        layer.weight_g.mul_(2.0)
    before = layer.weight.detach().numpy().copy()
    layer(wally.randn(1, 3))
    np.testing.assert_allclose(layer.weight.detach().numpy(), 2 * before, rtol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("dim", DIMS)
def test_parametrization_api_matches_torch(kind, dim):
    theirs, ours, x = pair(kind)
    torch.nn.utils.parametrizations.weight_norm(theirs, dim=dim)
    assert nn.utils.parametrizations.weight_norm(ours, dim=dim) is ours
    assert type(ours).__name__ == type(theirs).__name__ == f"Parametrized{kind}"
    assert isinstance(ours, getattr(nn, kind))
    assert parametrize.type_before_parametrizations(ours) is getattr(nn, kind)
    assert repr(ours) == repr(theirs)
    assert parametrize.is_parametrized(ours) and parametrize.is_parametrized(ours, "weight")
    assert not parametrize.is_parametrized(ours, "bias")
    same_state(theirs, ours)
    assert list(ours.state_dict())[-2:] == ["parametrizations.weight.original0",
                                            "parametrizations.weight.original1"]
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-12)
    same_step(theirs, ours, x)

    with torch.no_grad():
        theirs.parametrizations.weight.original0.mul_(0.5)
        theirs.parametrizations.weight.original1.sub_(0.125)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    same_step(theirs, ours, x)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    same_state(theirs, ours)

    # assigning the weight goes through right_inverse: g becomes its norms, v the weight
    target = np.random.default_rng(2).standard_normal(tuple(theirs.weight.shape))
    with torch.no_grad():
        theirs.weight = torch.tensor(target)
    ours.weight = wally.tensor(target)
    same_state(theirs, ours)
    np.testing.assert_allclose(ours.weight.detach().numpy(), target, rtol=1e-12)

    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight")
    assert parametrize.remove_parametrizations(ours, "weight") is ours
    assert type(ours) is getattr(nn, kind) and "parametrizations" not in ours._modules
    assert repr(ours) == repr(theirs)
    same_state(theirs, ours)
    with pytest.raises(ValueError, match=f"Module {kind} does not have a parametrization on "
                                         "weight"):
        parametrize.remove_parametrizations(ours, "weight")


def test_parametrization_api_loads_the_hook_apis_state_dict():
    """As in PyTorch, ``weight_g``/``weight_v`` (Bai et al.'s TCN checkpoints) load into the
    parametrization API's ``original0``/``original1``."""
    theirs, ours, x = pair("Conv1d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(theirs)
    with torch.no_grad():
        theirs.weight_g.mul_(3.0)
    old = {k: v.numpy() for k, v in theirs.state_dict().items()}
    theirs(torch.tensor(x))  # the hook API recomputes the weight before a forward pass
    nn.utils.parametrizations.weight_norm(ours)
    ours.load_state_dict(old)
    assert set(old) == {"bias", "weight_g", "weight_v"}  # the caller's dict is not edited
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-12)
    model = nn.Sequential(nn.Conv1d(3, 4, 3, dilation=2).double())
    nn.utils.parametrizations.weight_norm(model[0])
    model.load_state_dict({f"0.{k}": v for k, v in old.items()})
    np.testing.assert_allclose(model[0].weight.detach().numpy(),
                               theirs.weight.detach().numpy(), rtol=1e-12)


def test_a_parametrized_layer_trains_copies_and_caches():
    layer = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3))
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["bias", "parametrizations.weight.original0",
                     "parametrizations.weight.original1"]
    g = layer.parametrizations.weight.original0
    before = g.detach().numpy().copy()
    optimizer = wally.optim.SGD(layer.parameters(), lr=0.1)
    layer(wally.randn(5, 4)).pow(2).sum().backward()
    optimizer.step()
    assert not np.allclose(g.detach().numpy(), before)

    twin = copy.deepcopy(layer)
    assert type(twin) is not type(layer) and type(twin).__name__ == "ParametrizedLinear"
    parametrize.remove_parametrizations(layer, "weight")
    np.testing.assert_allclose(twin.weight.detach().numpy(), layer.weight.detach().numpy())
    assert type(twin).__name__ == "ParametrizedLinear"  # the copy keeps its parametrization

    twin.double()
    assert twin.weight.dtype == wally.float64
    with parametrize.cached():
        assert twin.weight is twin.weight
    assert twin.weight is not twin.weight


def test_register_parametrization_checks_its_arguments():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    class Widen(nn.Module):
        def forward(self, x):
            return wally.cat([x, x], dim=0)

    layer = nn.Linear(2, 2, bias=False)
    with pytest.raises(ValueError, match=r"Module 'Linear' does not have a parameter, a buffer, "
                                         r"or a parametrized element with name 'scale'"):
        parametrize.register_parametrization(layer, "scale", Double())
    with pytest.raises(ValueError, match=r"Linear.bias is None"):
        parametrize.register_parametrization(layer, "bias", Double())
    with pytest.raises(ValueError, match=r"may not change the tensor's shape or dtype: \(2, 2\) "
                                         r"wally.float32 became \(4, 2\) wally.float32"):
        parametrize.register_parametrization(layer, "weight", Widen())
    assert type(layer) is nn.Linear and isinstance(layer.weight, nn.Parameter)
    weight = layer.weight.detach().numpy().copy()
    parametrize.register_parametrization(layer, "weight", Double())
    assert list(layer.state_dict()) == ["parametrizations.weight.original"]
    np.testing.assert_allclose(layer.weight.detach().numpy(), 2 * weight)
    with pytest.raises(RuntimeError, match="parametrization Double does not implement "
                                           "right_inverse"):
        layer.weight = wally.zeros(2, 2)


# ----- the TCN and ONNX export -----------------------------------------------------------------
def test_the_tcn_normalises_its_causal_convolutions_as_bai_et_al():
    from wally.models import get_model

    model = get_model("tcn", in_channels=2, channels=[4, 4], kernel_size=2, input_size=20)
    convs = [m for m in model.modules() if isinstance(m, nn.CausalConv1d)]
    assert len(convs) == 4 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    assert not parametrize.is_parametrized(model.blocks[0].downsample)  # the 1×1: plain
    keys = list(model.state_dict())
    assert "blocks.0.net.0.parametrizations.weight.original0" in keys
    assert "blocks.0.net.0.weight" not in keys
    g = model.blocks[0].net[0].parametrizations.weight.original0
    assert tuple(g.shape) == (4, 1, 1)  # one length per output channel (dim=0)
    plain = get_model("tcn", in_channels=2, channels=[4, 4], kernel_size=2, weight_norm=False)
    assert "blocks.0.net.0.weight" in plain.state_dict()
    with pytest.raises(TypeError, match="tcn: expected weight_norm to be True or False"):
        get_model("tcn", weight_norm="yes")


def onnx_run(model, x, path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    wally.onnx.export(model, x, str(path))
    names = [init.name for init in onnx.load(str(path)).graph.initializer]
    session = ort.InferenceSession(str(path))
    return session.run(None, {"input": x.numpy()})[0], names


def test_onnx_export_writes_the_effective_weight(tmp_path):
    from wally.models import get_model

    model = get_model("tcn", in_channels=2, num_classes=3, channels=[4, 4], kernel_size=2,
                      input_size=20).eval()
    with wally.no_grad():
        model.blocks[1].net[0].parametrizations.weight.original0.mul_(3.0)
    x = wally.randn(5, 2, 20)
    got, names = onnx_run(model, x, tmp_path / "tcn.onnx")
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    for block in range(2):
        for conv in (0, 3):
            assert f"blocks.{block}.net.{conv}.weight" in names
    assert not [n for n in names if "parametrizations" in n or "original" in n]

    layer = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU())
    with pytest.warns(FutureWarning):
        nn.utils.weight_norm(layer[0], dim=None)
    got, names = onnx_run(layer, x, tmp_path / "hook.onnx")
    np.testing.assert_allclose(got, layer(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert "0.weight" in names and not [n for n in names if n.endswith(("_g", "_v"))]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_onnx_export_of_weight_norm_of_a_computed_tensor(dim, tmp_path):
    """Normalising a tensor the forward pass computes writes the formula, not a constant."""
    class Normalise(nn.Module):
        def __init__(self):
            super().__init__()
            self.g = nn.Parameter(wally.rand(*((4, 1) if dim == 0 else (1, 6) if dim == 1
                                               else ())) + 0.5)

        def forward(self, x):
            return wally._weight_norm(x, self.g, dim)

    model, x = Normalise(), wally.randn(4, 6)
    got, names = onnx_run(model, x, tmp_path / "n.onnx")
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert names[0] == "g"
