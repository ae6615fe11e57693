"""Module: registration, iteration order, modes, hooks, dtype casting, state_dict, repr,
containers and the lazy mechanism; PyTorch is the oracle for orders, keys, shapes and reprs."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

import wally
from wally import nn
from wally.testing import assert_close


# ----- models built the same way in both frameworks ------------------------------------------
def make_mlp(lib, lazy=False):
    """A small model touching every registration path: Sequential, nested modules, BatchNorm
    buffers, a bias-free layer, a shared layer and a loss with a weight buffer."""
    m = lib.nn

    class Net(m.Module):
        def __init__(self):
            super().__init__()
            self.scale = m.Parameter(lib.ones(1))
            self.body = m.Sequential(
                m.LazyLinear(8) if lazy else m.Linear(4, 8),
                m.ReLU(),
                m.BatchNorm1d(8),
                m.Dropout(0.25),
                m.Linear(8, 6, bias=False),
            )
            self.head = m.Linear(6, 3)
            self.tied = self.head  # shared: one set of parameters, two names
            self.register_buffer("calls", lib.zeros((), dtype=lib.int64))
            self.register_buffer("scratch", lib.zeros(2), persistent=False)
            self.loss = m.CrossEntropyLoss(weight=lib.ones(3))

        def forward(self, x):
            return self.head(self.body(x)) * self.scale

    return Net()


def copy_torch_to_wally(torch_model, wally_model):
    wally_model.load_state_dict(torch_model.state_dict())


# ----- registration ---------------------------------------------------------------------------
class TestRegistration:
    def test_setattr_registers_parameters_buffers_and_modules(self):
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(wally.zeros(2, 3))
                self.lin = nn.Linear(3, 1)
                self.plain = wally.zeros(4)  # a plain tensor is not a parameter
                self.register_buffer("stat", wally.ones(3))

        block = Block()
        assert list(block._parameters) == ["w"]
        assert list(block._modules) == ["lin"]
        assert list(block._buffers) == ["stat"]
        assert "plain" in block.__dict__
        assert [n for n, _ in block.named_parameters()] == ["w", "lin.weight", "lin.bias"]
        assert block.w is block._parameters["w"]
        assert block.stat is block._buffers["stat"]

    def test_parameter_wraps_without_copy_and_requires_grad(self):
        t = wally.zeros(3)
        p = nn.Parameter(t)
        assert p.array is t.array and p.requires_grad and p.is_leaf
        assert not nn.Parameter(t, requires_grad=False).requires_grad
        assert nn.Parameter().shape == (0,)
        assert repr(p).startswith("Parameter containing:\ntensor(")

    def test_reassigning_a_name_moves_it_between_registries(self):
        m = nn.Module()
        m.x = wally.zeros(1)  # a plain attribute ...
        m.x = nn.Linear(1, 1)  # ... becomes a module
        assert "x" not in m.__dict__ and "x" in m._modules
        m.register_buffer("b", wally.zeros(1))
        m.b = wally.ones(2)  # a buffer stays a buffer
        assert m._buffers["b"].shape == (2,)
        m.b = nn.Parameter(wally.ones(3))  # and a Parameter takes the name over
        assert "b" not in m._buffers and m._parameters["b"].shape == (3,)
        m.b = None  # a registered name may be set to None
        assert m._parameters["b"] is None and m.b is None
        with pytest.raises(TypeError, match="as parameter 'b'"):
            m.b = nn.ReLU()  # as in PyTorch: delete the parameter first

    def test_wrong_types_for_registered_names_raise(self):
        m = nn.Linear(2, 2)
        with pytest.raises(TypeError, match="parameter 'weight'"):
            m.weight = wally.zeros(2, 2)
        seq = nn.Sequential(nn.ReLU())
        with pytest.raises(TypeError, match="child module '0'"):
            setattr(seq, "0", wally.zeros(1))
        bn = nn.BatchNorm1d(2)
        with pytest.raises(TypeError, match="buffer 'running_mean'"):
            bn.running_mean = np.zeros(2)
        with pytest.raises(TypeError, match="Parameter or None"):
            m.register_parameter("extra", wally.zeros(1))

    def test_assigning_before_super_init_explains_the_fix(self):
        class Forgetful(nn.Module):
            def __init__(self):
                self.w = nn.Parameter(wally.zeros(1))

        with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
            Forgetful()

    def test_register_name_validation(self):
        m = nn.Module()
        with pytest.raises(KeyError, match="contain"):
            m.register_buffer("a.b", wally.zeros(1))
        with pytest.raises(KeyError, match="empty"):
            m.register_parameter("", None)
        with pytest.raises(KeyError, match="already exists"):
            m.register_buffer("train", wally.zeros(1))
        with pytest.raises(TypeError):
            m.add_module("x", wally.zeros(1))

    def test_getattr_and_delattr(self):
        m = nn.Linear(2, 3)
        with pytest.raises(AttributeError, match="'Linear' object has no attribute 'wieght'"):
            m.wieght  # noqa: B018
        del m.bias
        assert [n for n, _ in m.named_parameters()] == ["weight"]
        bn = nn.BatchNorm1d(2)
        del bn.running_var
        assert "running_var" not in dict(bn.named_buffers())

    def test_non_persistent_buffers_are_buffers_but_not_state(self):
        m = nn.Module()
        m.register_buffer("kept", wally.zeros(1))
        m.register_buffer("scratch", wally.zeros(1), persistent=False)
        m.register_buffer("empty", None)
        assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]
        assert list(m.state_dict()) == ["kept"]

    def test_get_submodule_parameter_buffer(self):
        net = make_mlp(wally)
        assert net.get_submodule("body.2") is net.body[2]
        assert net.get_parameter("body.0.weight") is net.body[0].weight
        assert net.get_buffer("body.2.running_mean") is net.body[2].running_mean
        with pytest.raises(AttributeError, match="body.0"):
            net.get_submodule("body.0.nothing")


# ----- iteration, compared with PyTorch ---------------------------------------------------------
class TestIterationMatchesTorch:
    def test_named_parameters_order(self, torch):
        ours = [(n, p.shape) for n, p in make_mlp(wally).named_parameters()]
        theirs = [(n, tuple(p.shape)) for n, p in make_mlp(torch).named_parameters()]
        assert ours == theirs
        assert "tied.weight" not in dict(ours)  # the shared layer is yielded once

    def test_named_buffers_modules_children(self, torch):
        ours, theirs = make_mlp(wally), make_mlp(torch)
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
        assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
        assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
        assert len(list(ours.modules())) == len(list(theirs.modules()))
        assert len(list(ours.parameters(recurse=False))) == 1

    def test_remove_duplicate_false_keeps_shared_names(self, torch):
        ours = [n for n, _ in make_mlp(wally).named_parameters(remove_duplicate=False)]
        theirs = [n for n, _ in make_mlp(torch).named_parameters(remove_duplicate=False)]
        assert ours == theirs and "tied.weight" in ours

    def test_named_parameters_prefix(self):
        names = [n for n, _ in nn.Linear(2, 2).named_parameters(prefix="fc")]
        assert names == ["fc.weight", "fc.bias"]


# ----- modes and gradients ----------------------------------------------------------------------
class TestModes:
    def test_train_eval_propagate(self):
        net = make_mlp(wally)
        assert all(m.training for m in net.modules())
        assert net.eval() is net
        assert not any(m.training for m in net.modules())
        net.train()
        assert all(m.training for m in net.modules())
        net.body.train(False)
        assert net.training and not net.body[2].training
        with pytest.raises(ValueError, match="boolean"):
            net.train("no")

    def test_zero_grad(self):
        layer = nn.Linear(3, 2)
        layer(wally.randn(4, 3)).sum().backward()
        assert layer.weight.grad is not None
        layer.zero_grad(set_to_none=False)
        assert layer.weight.grad is not None and not layer.weight.grad.array.any()
        layer.zero_grad()
        assert layer.weight.grad is None and layer.bias.grad is None

    def test_requires_grad_(self):
        net = make_mlp(wally)
        net.requires_grad_(False)
        assert not any(p.requires_grad for p in net.parameters())

    def test_apply_visits_children_first(self):
        net = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
        seen = []
        assert net.apply(lambda m: seen.append(type(m).__name__)) is net
        assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


# ----- dtype and device -------------------------------------------------------------------------
class TestTo:
    def test_double_keeps_identity_and_integer_buffers(self):
        net = make_mlp(wally)
        weight = net.body[0].weight
        net(wally.randn(5, 4)).sum().backward()
        assert net.double() is net
        assert net.body[0].weight is weight and weight.dtype == np.float64
        assert weight.grad.dtype == np.float64
        assert net.body[2].running_mean.dtype == np.float64
        assert net.body[2].num_batches_tracked.dtype == np.int64
        assert net.calls.dtype == np.int64
        assert net.scratch.dtype == np.float64
        net(wally.randn(5, 4, dtype=wally.float64))  # still runs
        net.float()
        assert weight.dtype == np.float32

    def test_to_arguments(self):
        layer = nn.Linear(2, 2)
        assert layer.to("cpu") is layer and layer.weight.dtype == np.float32
        layer.to(wally.device("cpu"), wally.float64)
        assert layer.weight.dtype == np.float64
        layer.to(wally.zeros(1))
        assert layer.weight.dtype == np.float32
        layer.to(dtype=wally.float64)
        assert layer.bias.dtype == np.float64
        with pytest.raises(RuntimeError, match="CPU"):
            layer.to("cuda:0")
        with pytest.raises(TypeError, match="floating point"):
            layer.to(wally.int64)


# ----- state_dict -------------------------------------------------------------------------------
class TestStateDict:
    def test_keys_and_shapes_match_torch(self, torch):
        ours = {k: tuple(v.shape) for k, v in make_mlp(wally).state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in make_mlp(torch).state_dict().items()}
        assert list(ours) == list(theirs)
        assert ours == theirs
        assert "scratch" not in ours and "body.2.num_batches_tracked" in ours

    def test_values_are_detached_and_share_memory(self):
        net = make_mlp(wally)
        state = net.state_dict()
        weight = state["body.0.weight"]
        assert type(weight) is wally.Tensor and not weight.requires_grad
        assert weight.array is net.body[0].weight.array
        assert net.state_dict(keep_vars=True)["body.0.weight"] is net.body[0].weight
        assert state["body.2.num_batches_tracked"].dtype == np.int64

    def test_round_trip(self):
        source, target = make_mlp(wally), make_mlp(wally)
        source.body[2].running_mean.fill_(0.5)
        result = target.load_state_dict(source.state_dict())
        assert result.missing_keys == [] and result.unexpected_keys == []
        assert repr(result) == "<All keys matched successfully>"
        for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
            assert_close(a, b, msg=name)
            assert a.array is not b.array  # copied, not aliased

    def test_load_from_torch_and_compare_outputs(self, torch):
        theirs, ours = make_mlp(torch), make_mlp(wally)
        copy_torch_to_wally(theirs, ours)
        theirs.eval(), ours.eval()
        x = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
        assert_close(ours(wally.tensor(x)), theirs(torch.tensor(x)), rtol=1e-5, atol=1e-5)

    def test_accepts_numpy_and_casts_dtype(self):
        layer = nn.Linear(2, 3)
        weight = np.arange(6, dtype=np.float64).reshape(3, 2)
        layer.load_state_dict({"weight": weight, "bias": np.array([1, 2, 3])})
        assert layer.weight.dtype == np.float32
        assert_close(layer.weight, weight.astype(np.float32))
        assert_close(layer.bias, np.array([1.0, 2.0, 3.0], dtype=np.float32))

    def test_load_copies_into_the_existing_arrays(self):
        layer = nn.Linear(2, 2)
        weight, array = layer.weight, layer.weight.array
        layer.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
        assert layer.weight is weight and layer.weight.array is array

    def test_strict_errors_name_every_key(self):
        layer = nn.Linear(3, 4)
        with pytest.raises(RuntimeError) as info:
            layer.load_state_dict({"weight": np.zeros((3, 4)), "junk": np.zeros(1)})
        message = str(info.value)
        assert "for Linear" in message
        assert 'Missing key(s) in state_dict: "bias"' in message
        assert 'Unexpected key(s) in state_dict: "junk"' in message
        assert "size mismatch for weight" in message
        assert "(3, 4)" in message and "(4, 3)" in message
        assert isinstance(info.value, ValueError)  # also a ValueError: the input is at fault

    def test_non_strict_reports_and_loads_what_matches(self):
        layer = nn.Linear(2, 2)
        result = layer.load_state_dict({"weight": np.ones((2, 2)), "junk": 1}, strict=False)
        assert result.missing_keys == ["bias"] and result.unexpected_keys == ["junk"]
        assert_close(layer.weight, np.ones((2, 2), dtype=np.float32))
        with pytest.raises(RuntimeError, match="size mismatch for weight"):
            layer.load_state_dict({"weight": np.ones((3, 3))}, strict=False)

    def test_shape_mismatch_in_nested_model_names_full_key(self):
        net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(3)))
        state = net.state_dict()
        state["1.0.running_var"] = wally.ones(5)
        with pytest.raises(RuntimeError, match=r"size mismatch for 1\.0\.running_var: .*\(5,\)"
                           r".*\(3,\)"):
            net.load_state_dict(state)

    def test_batchnorm_tolerates_missing_num_batches_tracked(self):
        bn = nn.BatchNorm2d(3)
        state = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
        assert bn.load_state_dict(state).missing_keys == []

    def test_state_dict_is_shared_module_aware(self, torch):
        ours = list(make_mlp(wally).state_dict())
        theirs = list(make_mlp(torch).state_dict())
        assert "tied.weight" in ours and ours == theirs


# ----- repr -------------------------------------------------------------------------------------
class TestRepr:
    def build(self, lib):
        m = lib.nn
        return m.Sequential(OrderedDict([
            ("features", m.Sequential(m.Flatten(), m.Linear(4, 8), m.LeakyReLU(0.2),
                                      m.BatchNorm1d(8, momentum=None, affine=False))),
            ("drop", m.Dropout(0.1)),
            ("blocks", m.ModuleList([m.Linear(8, 8) for _ in range(3)] + [m.Tanh()])),
            ("heads", m.ModuleDict({"cls": m.Linear(8, 2, bias=False), "act": m.GELU("tanh")})),
            ("out", m.Softmax(dim=1)),
            ("log", m.LogSoftmax(1)),
            ("id", m.Identity()),
            ("relu", m.ReLU(inplace=True)),
            ("sig", m.Sigmoid()),
            ("soft", m.Softplus()),
            ("unflat", m.Unflatten(1, (2, 4))),
            ("bn2", m.BatchNorm2d(3)),
            ("loss", m.CrossEntropyLoss()),
        ]))

    def test_matches_torch_exactly(self, torch):
        assert repr(self.build(wally)) == repr(self.build(torch))

    def test_lazy_layer_reprs_as_eager_after_first_call(self, torch):
        lazy = nn.Sequential(nn.LazyLinear(3), nn.LazyBatchNorm1d())
        lazy(wally.randn(4, 5))
        eager = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
        assert repr(lazy) == repr(eager)

    def test_extra_repr_multiline(self):
        class Two(nn.Module):
            def extra_repr(self):
                return "a=1\nb=2"

        assert repr(Two()) == "Two(\n  a=1\n  b=2\n)"


# ----- hooks ------------------------------------------------------------------------------------
class TestHooks:
    def test_forward_hook_sees_input_and_output_and_can_be_removed(self):
        layer = nn.Linear(3, 2)
        seen = []
        handle = layer.register_forward_hook(
            lambda m, args, out: seen.append((m, args[0].shape, out.shape)))
        x = wally.randn(4, 3)
        layer(x)
        assert seen == [(layer, (4, 3), (4, 2))]
        handle.remove()
        layer(x)
        assert len(seen) == 1

    def test_hooks_may_replace_input_and_output(self):
        layer = nn.Identity()
        layer.register_forward_pre_hook(lambda m, args: args[0] * 2)
        layer.register_forward_hook(lambda m, args, out: out + 1)
        assert_close(layer(wally.ones(2)), np.array([3.0, 3.0], dtype=np.float32))

    def test_order_prepend_and_kwargs(self):
        calls = []

        class Scale(nn.Module):
            def forward(self, x, factor=1.0):
                return x * factor

        m = Scale()
        m.register_forward_pre_hook(lambda mod, args: calls.append("second"))
        m.register_forward_pre_hook(lambda mod, args: calls.append("first"), prepend=True)

        def pre(mod, args, kwargs):
            calls.append("kwargs")
            return args, {"factor": 10.0}

        m.register_forward_pre_hook(pre, with_kwargs=True)
        m.register_forward_hook(lambda mod, args, kwargs, out: calls.append(kwargs["factor"]),
                                with_kwargs=True)
        out = m(wally.ones(1), factor=2.0)
        assert calls == ["first", "second", "kwargs", 10.0]
        assert out.item() == 10.0

    def test_handle_is_a_context_manager(self):
        layer = nn.ReLU()
        seen = []
        with layer.register_forward_hook(lambda m, a, o: seen.append(1)):
            layer(wally.ones(1))
        layer(wally.ones(1))
        assert seen == [1]

    def test_hooks_on_children_record_every_layer(self):
        net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2))
        shapes = []
        for child in net:
            child.register_forward_hook(lambda m, a, out: shapes.append(out.shape))
        net(wally.randn(2, 3, 4))
        assert shapes == [(2, 12), (2, 5), (2, 5), (2, 2)]


# ----- containers -------------------------------------------------------------------------------
class TestContainers:
    def test_sequential_indexing_slicing_and_editing(self):
        layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
        net = nn.Sequential(*layers)
        assert len(net) == 3 and list(net) == layers
        assert net[0] is layers[0] and net[-1] is layers[2]
        head = net[:2]
        assert isinstance(head, nn.Sequential) and list(head) == layers[:2]
        assert head[0] is layers[0]  # slices share the modules
        with pytest.raises(IndexError, match="out of range"):
            net[3]  # noqa: B018
        net.append(nn.Sigmoid())
        assert list(net._modules) == ["0", "1", "2", "3"]
        del net[1]
        assert list(net._modules) == ["0", "1", "2"] and net[1] is layers[2]
        net[0] = nn.Tanh()
        assert isinstance(net[0], nn.Tanh)
        net.insert(0, nn.Identity())
        assert isinstance(net[0], nn.Identity) and len(net) == 4
        with pytest.raises(TypeError, match="not a Module"):
            nn.Sequential(lambda x: x)

    def test_sequential_from_ordered_dict_and_forward(self):
        net = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 2)), ("act", nn.ReLU())]))
        assert net.fc is net[0]
        assert [n for n, _ in net.named_parameters()] == ["fc.weight", "fc.bias"]
        x = wally.randn(3, 4)
        assert_close(net(x), net.act(net.fc(x)))

    def test_module_list(self):
        blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
        blocks.append(nn.ReLU())
        blocks += [nn.Tanh()]
        assert len(blocks) == 4 and isinstance(blocks[-1], nn.Tanh)
        assert isinstance(blocks[1:], nn.ModuleList) and len(blocks[1:]) == 3
        assert [n for n, _ in blocks.named_parameters()] == [
            "0.weight", "0.bias", "1.weight", "1.bias"]
        del blocks[0]
        assert list(blocks._modules) == ["0", "1", "2"]
        blocks.insert(1, nn.Identity())
        assert isinstance(blocks[1], nn.Identity) and len(blocks) == 4
        with pytest.raises(TypeError, match="iterable"):
            blocks.extend(nn.Linear(1, 1))
        with pytest.raises(NotImplementedError, match="forward"):
            blocks(wally.ones(1))

    def test_module_dict(self):
        heads = nn.ModuleDict({"cls": nn.Linear(4, 3)})
        heads["box"] = nn.Linear(4, 2)
        heads.update([("aux", nn.ReLU())])
        assert list(heads) == ["cls", "box", "aux"] and "box" in heads and len(heads) == 3
        assert [n for n, _ in heads.named_parameters()] == [
            "cls.weight", "cls.bias", "box.weight", "box.bias"]
        assert isinstance(heads.pop("aux"), nn.ReLU) and len(heads) == 2
        assert list(heads.keys()) == ["cls", "box"]

    def test_deepcopy_is_independent(self):
        net = make_mlp(wally)
        twin = copy.deepcopy(net)
        assert twin.tied is twin.head  # sharing survives the copy
        twin.head.weight.array[...] = 0
        assert net.head.weight.array.any()
        assert isinstance(twin.head.weight, nn.Parameter) and twin.head.weight.requires_grad


# ----- lazy modules -----------------------------------------------------------------------------
class TestLazy:
    def test_parameters_are_placeholders_until_the_first_call(self):
        layer = nn.LazyLinear(4)
        params = list(layer.parameters())
        assert [type(p).__name__ for p in params] == ["UninitializedParameter"] * 2
        with pytest.raises(ValueError, match="dry run"):
            params[0].shape  # noqa: B018
        with pytest.raises(ValueError, match="dry run"):
            nn.init.normal_(params[0])
        out = layer(wally.randn(2, 3, 7))
        assert out.shape == (2, 3, 4)
        assert type(layer) is nn.Linear and layer.in_features == 7
        assert layer.weight is params[0] and type(params[0]) is nn.Parameter  # in place
        assert params[0].shape == (4, 7) and params[1].shape == (4,)
        assert not layer._forward_pre_hooks  # the initialisation hook removed itself

    def test_materialised_weights_use_linear_init(self):
        layer = nn.LazyLinear(200)
        layer(wally.randn(1, 50))
        bound = 1 / np.sqrt(50)
        assert np.abs(layer.weight.array).max() <= bound
        assert np.abs(layer.weight.array).max() > 0.9 * bound

    def test_gradients_flow_after_materialisation(self):
        net = nn.Sequential(nn.LazyLinear(3), nn.ReLU(), nn.LazyLinear(1))
        params = list(net.parameters())
        net(wally.randn(5, 2)).sum().backward()
        assert all(p.grad is not None and p.grad.shape == p.shape for p in params)

    def test_dtype_chosen_before_the_dry_run(self):
        layer = nn.LazyLinear(2).double()
        layer(wally.randn(3, 4, dtype=wally.float64))
        assert layer.weight.dtype == np.float64

    def test_load_state_dict_materialises(self, torch):
        source = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
        lazy = nn.Sequential(nn.LazyLinear(3), nn.LazyBatchNorm1d())
        lazy.load_state_dict(source.state_dict())
        assert type(lazy[0]) is nn.Linear and lazy[0].in_features == 5
        assert type(lazy[1]) is nn.BatchNorm1d and lazy[1].num_features == 3
        assert repr(lazy) == repr(source)
        source.eval(), lazy.eval()
        x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
        assert_close(lazy(wally.tensor(x)), source(torch.tensor(x)), atol=1e-5)

    def test_lazy_batchnorm_materialises_buffers(self):
        bn = nn.LazyBatchNorm2d()
        bn(wally.randn(4, 6, 3, 3))
        assert type(bn) is nn.BatchNorm2d and bn.num_features == 6
        assert bn.running_mean.shape == (6,) and type(bn.running_mean) is wally.Tensor
        assert int(bn.num_batches_tracked.item()) == 1
        assert bn.weight.shape == (6,) and bn.weight.array.tolist() == [1.0] * 6

    def test_lazy_batchnorm_rejects_wrong_rank_by_name(self):
        with pytest.raises(ValueError, match=r"LazyBatchNorm2d.*4-D.*\(4, 6\)"):
            nn.LazyBatchNorm2d()(wally.randn(4, 6))

    def test_deepcopy_of_uninitialised_model_initialises_separately(self):
        net = nn.Sequential(nn.LazyLinear(2))
        twin = copy.deepcopy(net)
        twin(wally.randn(1, 3))
        assert type(twin[0]) is nn.Linear and type(net[0]) is nn.LazyLinear
        net(wally.randn(1, 5))
        assert net[0].in_features == 5 and twin[0].in_features == 3
