"""wally.models against d2l's PyTorch code: same state_dict keys and shapes, same outputs.

Each torch twin below is d2l's code for the model (lazy layers and all), materialised by one
forward pass. Weights go torch → wally through ``load_state_dict``; BatchNorm statistics and
affine parameters are randomised first so that eval-mode outputs test them too. Sizes are
kept small where the architecture allows, so the file runs in seconds.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import wally
from wally import models
from wally import nn as wnn

# ----- d2l's PyTorch code, as the book writes it ----------------------------------------------


def d2l_lenet(nn, num_classes=10):
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.LazyLinear(120), nn.Sigmoid(),
        nn.LazyLinear(84), nn.Sigmoid(),
        nn.LazyLinear(num_classes))


def d2l_bn_lenet(nn, num_classes=10, act=None, pool=None):
    """d2l's BNLeNet; ``act``/``pool`` swap Sigmoid/AvgPool2d (ReLU/MaxPool2d: lenet_modern)."""
    act = act or nn.Sigmoid
    pool = pool or nn.AvgPool2d
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(),
        act(), pool(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(),
        act(), pool(kernel_size=2, stride=2),
        nn.Flatten(), nn.LazyLinear(120), nn.LazyBatchNorm1d(),
        act(), nn.LazyLinear(84), nn.LazyBatchNorm1d(),
        act(), nn.LazyLinear(num_classes))


def d2l_alexnet(nn, num_classes=10, channels=(96, 256, 384, 384, 256), hidden=4096):
    c1, c2, c3, c4, c5 = channels
    return nn.Sequential(
        nn.LazyConv2d(c1, kernel_size=11, stride=4, padding=1),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(c2, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(c3, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(c4, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(c5, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
        nn.LazyLinear(hidden), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(hidden), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(num_classes))


def d2l_vgg_block(nn, num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def d2l_vgg(nn, arch, num_classes=10, hidden=4096):
    conv_blks = []
    for (num_convs, out_channels) in arch:
        conv_blks.append(d2l_vgg_block(nn, num_convs, out_channels))
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.LazyLinear(hidden), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(hidden), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(num_classes))


def d2l_nin_block(nn, out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())


def d2l_nin(nn, num_classes=10):
    return nn.Sequential(
        d2l_nin_block(nn, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        d2l_nin_block(nn, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        d2l_nin_block(nn, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        d2l_nin_block(nn, num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())


def d2l_inception(torch):
    nn, F = torch.nn, torch.nn.functional

    class Inception(nn.Module):
        # c1--c4 are the number of output channels for each branch
        def __init__(self, c1, c2, c3, c4, **kwargs):
            super().__init__(**kwargs)
            # Branch 1
            self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
            # Branch 2
            self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
            self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
            # Branch 3
            self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
            self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
            # Branch 4
            self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
            self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

        def forward(self, x):
            b1 = F.relu(self.b1_1(x))
            b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
            b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
            b4 = F.relu(self.b4_2(self.b4_1(x)))
            return torch.cat((b1, b2, b3, b4), dim=1)

    return Inception


def d2l_googlenet(torch, num_classes=10):
    nn, Inception = torch.nn, d2l_inception(torch)
    b1 = nn.Sequential(
        nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(
        nn.LazyConv2d(64, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b3 = nn.Sequential(Inception(64, (96, 128), (16, 32), 32),
                       Inception(128, (128, 192), (32, 96), 64),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b4 = nn.Sequential(Inception(192, (96, 208), (16, 48), 64),
                       Inception(160, (112, 224), (24, 64), 64),
                       Inception(128, (128, 256), (24, 64), 64),
                       Inception(112, (144, 288), (32, 64), 64),
                       Inception(256, (160, 320), (32, 128), 128),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b5 = nn.Sequential(Inception(256, (160, 320), (32, 128), 128),
                       Inception(384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    return nn.Sequential(b1, b2, b3, b4, b5, nn.LazyLinear(num_classes))


def d2l_residual(torch):
    nn, F = torch.nn, torch.nn.functional

    class Residual(nn.Module):
        """The Residual block of ResNet models."""
        def __init__(self, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1,
                                       stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1,
                                           stride=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)

    return Residual


def d2l_resnet(torch, arch, num_classes=10, cifar=False):
    nn, Residual = torch.nn, d2l_residual(torch)

    def b1():
        if cifar:  # the CIFAR stem: 3×3 convolution, no max-pooling
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=3, padding=1),
                nn.LazyBatchNorm2d(), nn.ReLU())
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def block(num_residuals, num_channels, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)

    net = nn.Sequential(b1())
    for i, b in enumerate(arch):
        net.add_module(f'b{i+2}', block(*b, first_block=(i == 0)))
    net.add_module('last', nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.LazyLinear(num_classes)))
    return net


def d2l_densenet(torch, num_channels=64, growth_rate=32, arch=(4, 4, 4, 4), num_classes=10):
    nn = torch.nn

    def conv_block(num_channels):
        return nn.Sequential(
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, kernel_size=3, padding=1))

    class DenseBlock(nn.Module):
        def __init__(self, num_convs, num_channels):
            super().__init__()
            layer = []
            for _ in range(num_convs):
                layer.append(conv_block(num_channels))
            self.net = nn.Sequential(*layer)

        def forward(self, X):
            for blk in self.net:
                Y = blk(X)
                # Concatenate input and output of each block along the channels
                X = torch.cat((X, Y), dim=1)
            return X

    def transition_block(num_channels):
        return nn.Sequential(
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, kernel_size=1),
            nn.AvgPool2d(kernel_size=2, stride=2))

    net = nn.Sequential(nn.Sequential(
        nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
    for i, num_convs in enumerate(arch):
        net.add_module(f'dense_blk{i+1}', DenseBlock(num_convs, growth_rate))
        # The number of output channels in the previous dense block
        num_channels += num_convs * growth_rate
        # A transition layer that halves the number of channels is added
        # between the dense blocks
        if i != len(arch) - 1:
            num_channels //= 2
            net.add_module(f'tran_blk{i+1}', transition_block(num_channels))
    net.add_module('last', nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.LazyLinear(num_classes)))
    return net


# ----- helpers ------------------------------------------------------------------------------


def materialise(torch, net, input_shape):
    """Run one eval forward pass so that the lazy layers take their shapes."""
    net.eval()
    with torch.no_grad():
        net(torch.zeros(input_shape))
    return net


def randomise_batch_norm(torch, net):
    """Non-trivial BatchNorm statistics and affine parameters, so that eval outputs test them."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))


def keys_and_shapes(state_dict):
    return [(key, tuple(value.shape)) for key, value in state_dict.items()]


def copy_weights(twin, model):
    result = model.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys


def assert_close(actual, expected, rtol=1e-4):
    """``actual`` within ``rtol`` of ``expected``, relative to the largest entry of ``expected``."""
    expected = np.asarray(expected)
    scale = max(float(np.abs(expected).max()), 1e-6)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=rtol * scale)


def twin_of(torch, case):
    net = case.twin(torch)
    return materialise(torch, net, (2, *case.input_shape))


class Case:
    def __init__(self, name, kwargs, twin, input_shape):
        self.name, self.kwargs, self.twin, self.input_shape = name, kwargs, twin, input_shape

    def __repr__(self):
        return f"{self.name}({self.kwargs})"


CASES = [
    Case("lenet", {}, lambda t: d2l_lenet(t.nn), (1, 28, 28)),
    Case("lenet", {"in_channels": 3, "num_classes": 7, "input_size": 32},
         lambda t: d2l_lenet(t.nn, num_classes=7), (3, 32, 32)),
    Case("lenet_modern", {},
         lambda t: d2l_bn_lenet(t.nn, act=t.nn.ReLU, pool=t.nn.MaxPool2d), (1, 28, 28)),
    Case("lenet_modern", {"activation": "sigmoid", "pool": "avg"},
         lambda t: d2l_bn_lenet(t.nn), (1, 28, 28)),
    Case("alexnet", {"input_size": 67, "hidden_features": 256},
         lambda t: d2l_alexnet(t.nn, hidden=256), (1, 67, 67)),
    Case("alexnet", {"input_size": (80, 99), "width": 0.25, "hidden_features": 64},
         lambda t: d2l_alexnet(t.nn, channels=(24, 64, 96, 96, 64), hidden=64), (1, 80, 99)),
    # d2l trains VGG-11 with a quarter of the channels: ((1, 16), (1, 32), (2, 64), ...)
    Case("vgg11", {"width": 0.25, "input_size": 32, "hidden_features": 128},
         lambda t: d2l_vgg(t.nn, ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)), hidden=128),
         (1, 32, 32)),
    Case("vgg", {"arch": [[1, 8], [2, 16]], "in_channels": 3, "input_size": 12,
                 "hidden_features": 32},
         lambda t: d2l_vgg(t.nn, ((1, 8), (2, 16)), hidden=32), (3, 12, 12)),
    Case("nin", {"input_size": 128}, lambda t: d2l_nin(t.nn), (1, 128, 128)),
    Case("googlenet", {"input_size": 32}, lambda t: d2l_googlenet(t), (1, 32, 32)),
    Case("resnet18", {"input_size": 32},
         lambda t: d2l_resnet(t, ((2, 64), (2, 128), (2, 256), (2, 512))), (1, 32, 32)),
    Case("resnet18_cifar", {"input_size": 16},
         lambda t: d2l_resnet(t, ((2, 64), (2, 128), (2, 256), (2, 512)), cifar=True),
         (3, 16, 16)),
    Case("densenet", {"input_size": 32}, lambda t: d2l_densenet(t), (1, 32, 32)),
]


# ----- the models against their twins --------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_model_matches_d2l(torch, case):
    torch.manual_seed(0)
    twin = twin_of(torch, case)
    model = models.get_model(case.name, **case.kwargs).eval()

    assert keys_and_shapes(model.state_dict()) == keys_and_shapes(twin.state_dict())
    assert model.input_size == case.input_shape

    randomise_batch_norm(torch, twin)
    copy_weights(twin, model)
    x = np.random.default_rng(0).standard_normal((2, *case.input_shape), dtype=np.float32)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    with wally.no_grad():
        actual = model(wally.tensor(x)).numpy()
    assert actual.shape == expected.shape
    assert_close(actual, expected)


BACKWARD_CASES = [
    CASES[0],  # lenet
    CASES[2],  # lenet_modern
    Case("resnet18", {"input_size": 32},
         lambda t: d2l_resnet(t, ((2, 64), (2, 128), (2, 256), (2, 512))), (1, 32, 32)),
    Case("googlenet", {"input_size": 16}, lambda t: d2l_googlenet(t), (1, 16, 16)),
    Case("densenet", {"input_size": 32}, lambda t: d2l_densenet(t), (1, 32, 32)),
]


@pytest.mark.parametrize("case", BACKWARD_CASES, ids=repr)
def test_backward_matches_d2l(torch, case):
    """Training mode, in float64: loss, every parameter's gradient, BatchNorm's new statistics.

    float64 because in float32 a BatchNorm over a few values (ResNet's last stage sees 1×1
    maps) can amplify rounding differences into per-cent gradient differences; in float64
    wally and torch agree to about 1e-12, so a wrong backward cannot hide in the tolerance.
    """
    torch.manual_seed(0)
    twin = twin_of(torch, case).train().double()
    model = models.get_model(case.name, **case.kwargs).train()
    copy_weights(twin, model)
    model.double()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, *case.input_shape))
    labels = rng.integers(0, 10, size=4)
    loss = wnn.functional.cross_entropy(model(wally.tensor(x)), wally.tensor(labels))
    loss.backward()
    twin_loss = torch.nn.functional.cross_entropy(
        twin(torch.from_numpy(x)), torch.from_numpy(labels)
    )
    twin_loss.backward()

    assert_close(loss.item(), twin_loss.item(), rtol=1e-9)
    twin_grads = {key: p.grad.numpy() for key, p in twin.named_parameters()}
    # A conv bias just before BatchNorm has a zero gradient in exact arithmetic (the batch mean
    # is subtracted): its rounding noise is judged against the largest gradient.
    floor = 1e-9 * max(float(np.abs(g).max()) for g in twin_grads.values())
    for key, param in model.named_parameters():
        assert param.grad is not None, f"{case.name}: no gradient reached {key}"
        grad = param.grad.numpy()
        assert grad.shape == tuple(param.shape) and grad.dtype == np.float64, key
        expected = twin_grads[key]
        atol = max(1e-7 * float(np.abs(expected).max()), floor)
        np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=atol, err_msg=key)
    # BatchNorm's running statistics were updated by the training-mode pass, as in torch.
    for key, buffer in model.state_dict().items():
        if "running" in key:
            assert_close(buffer.numpy(), twin.state_dict()[key].numpy(), rtol=1e-9)


@pytest.mark.parametrize(
    "block, d2l_args, input_shape",
    [
        ("Residual", ((6,), {}), (4, 6, 5, 5)),
        ("Residual", ((6,), {"use_1x1conv": True, "strides": 2}), (4, 3, 6, 6)),
        ("Inception", ((64, (96, 128), (16, 32), 32), {}), (2, 192, 6, 6)),
    ],
)
@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_block_matches_d2l(torch, block, d2l_args, input_shape, lazy):
    args, kwargs = d2l_args
    twin_class = {"Residual": d2l_residual, "Inception": d2l_inception}[block](torch)
    torch.manual_seed(0)
    twin = materialise(torch, twin_class(*args, **kwargs), input_shape)
    in_channels = None if lazy else input_shape[1]
    module = getattr(models, block)(*args, **kwargs, in_channels=in_channels).eval()
    x = np.random.default_rng(0).standard_normal(input_shape, dtype=np.float32)
    if lazy:
        with wally.no_grad():
            module(wally.tensor(x))
    assert keys_and_shapes(module.state_dict()) == keys_and_shapes(twin.state_dict())
    randomise_batch_norm(torch, twin)
    copy_weights(twin, module)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    with wally.no_grad():
        assert_close(module(wally.tensor(x)).numpy(), expected)


def test_dense_and_transition_blocks():
    block = models.DenseBlock(2, 10, in_channels=3)
    assert block(wally.randn(4, 3, 8, 8)).shape == (4, 23, 8, 8)
    assert block.out_channels == 23
    assert [k for k in block.state_dict() if k.endswith("weight")] == [
        "net.0.0.weight", "net.0.2.weight", "net.1.0.weight", "net.1.2.weight"
    ]
    transition = models.TransitionBlock(5, in_channels=23)
    assert transition(block(wally.randn(4, 3, 8, 8))).shape == (4, 5, 4, 4)
    assert [k for k, _ in keys_and_shapes(transition.state_dict())][:2] == ["0.weight", "0.bias"]
    head = transition[:3]
    assert type(head) is wnn.Sequential and len(head) == 3


# ----- sizes, counts and errors --------------------------------------------------------------


def test_lenet_parameter_count():
    net = models.lenet()
    assert sum(p.numel() for p in net.parameters()) == 61_706
    assert list(net.state_dict())[0] == "0.weight" and list(net.state_dict())[-1] == "11.bias"
    assert net.input_size == (1, 28, 28)


@pytest.mark.parametrize(
    "name, count",
    [("lenet_modern", 44_878), ("nin", 1_992_166), ("googlenet", 5_977_530),
     ("resnet18", 11_178_378), ("resnet18_cifar", 11_176_970), ("densenet", 758_226)],
)
def test_parameter_counts_at_defaults(name, count):
    """The counts the docstrings quote (the models' keys and shapes are checked above)."""
    model = models.get_model(name)
    assert sum(p.numel() for p in model.parameters()) == count
    assert f"{count:,}" in (getattr(models, name).__doc__ or "")


@pytest.mark.parametrize(
    "name, input_size",
    [("lenet", (1, 28, 28)), ("lenet_modern", (1, 28, 28)), ("alexnet", (1, 224, 224)),
     ("vgg11", (1, 224, 224)), ("nin", (1, 224, 224)), ("googlenet", (1, 96, 96)),
     ("resnet18", (1, 96, 96)), ("resnet18_cifar", (3, 32, 32)), ("densenet", (1, 96, 96))],
)
def test_default_input_sizes(name, input_size):
    builder = getattr(models, name)
    kwargs = {"hidden_features": 8} if name in ("alexnet", "vgg11") else {}
    if name == "vgg11":
        kwargs["width"] = 0.125
    model = builder(**kwargs)
    assert model.input_size == input_size
    assert model_output_shape(model, (1, *input_size)) == (1, 10)


def model_output_shape(model, shape):
    with wally.no_grad():
        return tuple(model.eval()(wally.zeros(shape)).shape)


def test_input_too_small_names_the_model_and_the_minimum():
    with pytest.raises(ValueError, match=r"alexnet: input_size 64×64 is too small.*65×65"):
        models.alexnet(input_size=64)
    with pytest.raises(ValueError, match=r"lenet.*too small"):
        models.lenet(input_size=8)
    with pytest.raises(TypeError, match="input_size"):
        models.lenet(input_size="28")
    with pytest.raises(ValueError, match="activation"):
        models.lenet_modern(activation="gelu")


def test_residual_without_1x1conv_checks_the_shortcut():
    with pytest.raises(ValueError, match="first stage must have 64 channels"):
        models.resnet(((1, 8), (1, 16)))
    with pytest.raises(ValueError, match="use_1x1conv"):
        models.Residual(6, strides=2, in_channels=6)
    with pytest.raises(ValueError, match="use_1x1conv"):
        models.Residual(6, in_channels=3)


# ----- the registry ----------------------------------------------------------------------------


ROUND_TRIPS = [
    ("wally_finder", {"patch_size": 40}),
    ("lenet", {"num_classes": 5, "input_size": [32, 28]}),
    ("lenet_modern", {"in_channels": 3, "activation": "sigmoid", "pool": "avg"}),
    ("alexnet", {"input_size": 67, "width": 0.125, "hidden_features": 16}),
    ("vgg11", {"width": 0.125, "input_size": 32, "hidden_features": 16}),
    ("vgg", {"arch": ((1, 4), (1, 8)), "input_size": 8, "hidden_features": 16}),
    ("nin", {"num_classes": 3}),
    ("googlenet", {"in_channels": 3}),
    ("resnet", {"arch": ((1, 64), (1, 16)), "cifar": True}),
    ("resnet18", {"cifar": True}),
    ("resnet18_cifar", {}),
    ("densenet", {"growth_rate": 8, "arch": (2, 2)}),
    ("gcn", {"hidden_channels": 4, "num_layers": 3}),
    ("p4cnn", {"channels": (2, 3), "pool": "mean", "input_size": 12}),
    ("z2cnn", {"channels": (4, 6), "kernel_size": 5}),
    ("p4_wally_finder", {"patch_size": 40}),
    ("fcn1d", {"in_channels": 3, "num_classes": 4, "input_size": 20}),
    ("tcn", {"in_channels": 2, "channels": [4, 4], "kernel_size": 2, "dropout": 0.0}),
    ("lightgcn", {"num_nodes": 7, "embedding_dim": 4, "num_layers": 2}),
    ("textcnn", {"vocab_size": 30, "num_classes": 4, "kernel_sizes": (2, 3)}),
]


def test_every_model_is_registered():
    assert models.list_models() == sorted(name for name, _ in ROUND_TRIPS)


@pytest.mark.parametrize("name, kwargs", ROUND_TRIPS, ids=[n for n, _ in ROUND_TRIPS])
def test_get_model_round_trip(name, kwargs):
    model = models.get_model(name, **kwargs)
    config = models.model_config(model)
    assert config["name"] == name
    stored = json.loads(json.dumps(config))
    assert stored == config
    rebuilt = models.get_model(**stored)
    assert models.model_config(rebuilt) == config
    assert keys_and_shapes(rebuilt.state_dict()) == keys_and_shapes(model.state_dict())
    assert rebuilt.input_size == model.input_size
    # a config records every argument, defaults included
    builder = getattr(models, name)
    assert set(config["kwargs"]) == set(inspect.signature(builder).parameters)


def test_get_model_overrides_and_errors():
    model = models.get_model("lenet", {"num_classes": 5}, num_classes=3)
    assert models.model_config(model)["kwargs"]["num_classes"] == 3
    assert model.state_dict()["11.bias"].shape == (3,)
    with pytest.raises(ValueError, match=r"unknown model 'lenet6'.*'lenet'.*'resnet18'"):
        models.get_model("lenet6")
    with pytest.raises(ValueError, match="not built by wally.models"):
        models.model_config(wnn.Sequential(wnn.Linear(2, 2)))
    # the config handed out is a copy
    models.model_config(model)["kwargs"]["num_classes"] = 99
    assert models.model_config(model)["kwargs"]["num_classes"] == 3
