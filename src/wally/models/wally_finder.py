"""The Wally finder: a fully convolutional network that turns a crowd into a heatmap of Wally.

The study note's two principles, made into a detector. *Locality*: every output unit looks at
one window of the picture (its receptive field, 30×30 pixels by default). *Translation
invariance*: the same weights look at every window. So a network trained to answer "is Wally
in the middle of this 32×32 patch?" (one output unit) already answers it for every window of a
scene of any size, all at once: on a ``H × W`` scene it gives a heatmap of
``(⌊(H − 30)/4⌋ + 1) × (⌊(W − 30)/4⌋ + 1)`` logits, one per 30×30 window (the receptive
field), 4 pixels apart. No ``Linear`` layer ties it to one input size; its head is a 1×1
convolution.

>>> finder = wally_finder()
>>> finder(wally.randn(8, 3, 32, 32)).shape          # a batch of patches: one logit each
wally.Size([8, 1, 1, 1])
>>> finder(wally.randn(1, 3, 192, 256)).shape        # a scene: a heatmap
wally.Size([1, 1, 41, 57])

Training it and finding Wally with it are an application of the library, not part of the
model: they live in :mod:`wally.apps.finder` (``train_wally_finder``, ``find_wally``,
``heatmap``, ``Detection``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from wally import nn
from wally.models._layout import init_cnn, set_input_size
from wally.models.registry import register_model

__all__ = ["wally_finder", "p4_wally_finder"]


def _last_kernel(patch_size: int) -> int:
    """The kernel of the last convolution: what is left of a patch after conv3, pool2,
    conv3, pool2 (``⌊(⌊(P − 2)/2⌋ − 2)/2⌋``), so that a patch gives one output unit."""
    return ((patch_size - 2) // 2 - 2) // 2


@register_model
def wally_finder(
    in_channels: int = 3, channels: Sequence[int] = (16, 32, 64), patch_size: int = 32
) -> nn.Sequential:
    """The Wally finder: four convolutions, no padding, no ``Linear``; a 1×1 head.

    ::

        conv1 3×3 → BN → ReLU → max-pool 2     32×32 → 30×30 → 15×15
        conv2 3×3 → BN → ReLU → max-pool 2     15×15 → 13×13 → 6×6
        conv3 6×6 → BN → ReLU                  6×6 → 1×1       (the last kernel fits the patch)
        head  1×1                              64 channels → 1 logit: "Wally is centred here"

    Without padding, output unit ``(i, j)`` of a scene is computed from exactly the pixels of
    the patch at ``(4i, 4j)`` and gives the same logit that patch alone would (in eval mode):
    training on patches and finding on scenes are the same computation. Its receptive field
    is ``3 + 1 + 2·2 + 2·2 + 5·4 = 30`` pixels, jump 4, start 0.

    Args:
        in_channels: 3 for RGB.
        channels: output channels of conv1, conv2 and conv3.
        patch_size: the side of the training patches; at least 14.

    Shape:
        - Input: ``(N, in_channels, H, W)`` with ``H, W ≥ R``.
        - Output: ``(N, 1, ⌊(H − R)/4⌋ + 1, ⌊(W − R)/4⌋ + 1)`` logits, where ``R = 4·k + 6`` is
          the receptive field and ``k = ⌊(⌊(P − 2)/2⌋ − 2)/2⌋`` the last kernel (``P`` the
          patch size; ``k = 6``, ``R = 30`` for ``P = 32``).

    Example::

        >>> wally_finder()(wally.randn(1, 3, 64, 96)).shape
        wally.Size([1, 1, 9, 17])
        >>> wally_finder()(wally.randn(1, 3, 32, 32)).shape     # a training patch
        wally.Size([1, 1, 1, 1])
    """
    if len(channels) != 3 or any(int(c) < 1 for c in channels):
        raise ValueError(f"wally_finder: channels must be three positive ints, got {channels!r}")
    if patch_size < 14:
        raise ValueError(f"wally_finder: patch_size must be at least 14, got {patch_size}")
    c1, c2, c3 = (int(c) for c in channels)
    net = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, c1, 3)), ("bn1", nn.BatchNorm2d(c1)),
        ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 3)), ("bn2", nn.BatchNorm2d(c2)),
        ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(c2, c3, _last_kernel(patch_size))), ("bn3", nn.BatchNorm2d(c3)),
        ("relu3", nn.ReLU()),
        ("head", nn.Conv2d(c3, 1, 1)),
    ]))
    net.apply(init_cnn)
    set_input_size(net, in_channels, (patch_size, patch_size))
    return net


@register_model
def p4_wally_finder(
    in_channels: int = 3, channels: Sequence[int] = (8, 16, 32), patch_size: int = 32
) -> nn.Sequential:
    """The Wally finder on p4 (Cohen & Welling 2016): :func:`wally_finder`'s geometry with
    group convolutions, so a turned Wally gives (about) the same logit as an upright one.

    ::

        conv1 P4ConvZ2 3×3 → P4BatchNorm → ReLU → max-pool 2     32×32 → 30×30 → 15×15
        conv2 P4ConvP4 3×3 → P4BatchNorm → ReLU → max-pool 2     15×15 → 13×13 → 6×6
        conv3 P4ConvP4 6×6 → P4BatchNorm → ReLU                  6×6 → 1×1
        rotation_pool  max over the 4 rotations                  4·c3 maps → c3
        head  1×1                                                c3 → 1 logit

    ``channels`` counts p4 fields (4 maps each): the default ``(8, 16, 32)`` has about the
    plain finder's parameters (a p4 layer of ``c`` fields from ``c'`` holds ``4·c·c'·k²``
    weights, a plain one of ``2c`` channels from ``2c'`` as many). Same receptive field
    (30×30, jump 4, start 0), same tiling and same :func:`find_wally`.

    Invariance is exact for a patch's convolutions and rotation pool; the 2×2 pool on the
    13×13 map drops its last row and column, which a turn moves to the first, so a turned
    patch's logit is close to, not equal to, the upright one's (and a turned scene's heatmap
    grid sits up to 3 pixels off the upright one's).

    Train it on ``WallyPatches(cues="invariant")`` (``train_wally_finder(p4_wally_finder(),
    cues="invariant")``): in the default scenes only the direction of his stripes tells Wally
    from the vertical-striped decoys, which a rotation-invariant finder cannot see.

    Shape:
        - Input: ``(N, in_channels, H, W)``.  - Output: as :func:`wally_finder`'s.

    Example::

        >>> p4_wally_finder()(wally.randn(1, 3, 64, 96)).shape
        wally.Size([1, 1, 9, 17])
    """
    if len(channels) != 3 or any(int(c) < 1 for c in channels):
        raise ValueError(f"p4_wally_finder: channels must be three positive ints, got "
                         f"{channels!r}")
    if patch_size < 14:
        raise ValueError(f"p4_wally_finder: patch_size must be at least 14, got {patch_size}")
    c1, c2, c3 = (int(c) for c in channels)
    net = nn.Sequential(OrderedDict([
        ("conv1", nn.P4ConvZ2(in_channels, c1, 3)), ("bn1", nn.P4BatchNorm2d(c1)),
        ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.P4ConvP4(c1, c2, 3)), ("bn2", nn.P4BatchNorm2d(c2)),
        ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.P4ConvP4(c2, c3, _last_kernel(patch_size))),
        ("bn3", nn.P4BatchNorm2d(c3)), ("relu3", nn.ReLU()),
        ("rotation_pool", nn.RotationPool("max")),
        ("head", nn.Conv2d(c3, 1, 1)),
    ]))
    net.apply(init_cnn)
    set_input_size(net, in_channels, (patch_size, patch_size))
    return net
