"""wally: convolutional neural networks from scratch on NumPy, behind PyTorch's API.

``import wally as torch`` runs the d2l CNN chapters' code; every op is a few lines of NumPy
with the study note's equation beside it.
"""

# First: importing it keeps freed blocks for the next step (WALLY_MALLOC=system: it doesn't).
from wally.backends import memory as _memory  # noqa: F401, I001
from wally import autograd, functional, linalg, nn
from wally._alias import alias_torch
from wally._parallel import (
    are_deterministic_algorithms_enabled,
    get_num_threads,
    set_num_threads,
    use_deterministic_algorithms,
)
from wally.autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from wally.creation import *  # noqa: F403
from wally.device import cuda, device
from wally.dtypes import *  # noqa: F403
from wally.functional import log_softmax, softmax
from wally.functional.activation_extra import (  # torch has them at the top level too
    celu,
    celu_,
    prelu,
    selu,
    selu_,
    threshold,
    threshold_,
)
from wally.functional.distance import cdist, cosine_similarity, pairwise_distance
from wally.linalg import tensor_norm as norm
from wally.ops import (
    abs,
    add,
    allclose,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    chunk,
    clamp,
    clip,
    clone,
    concat,
    concatenate,
    cos,
    div,
    eq,
    equal,
    exp,
    flatten,
    flip,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    neg,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    sign,
    sin,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from wally.ops_index import (
    argsort,
    gather,
    index_select,
    kthvalue,
    masked_fill,
    nonzero,
    scatter,
    scatter_add,
    sort,
    topk,
)
from wally.ops_math import (
    baddbmm,
    bmm,
    ceil,
    clamp_max,
    clamp_min,
    cosh,
    cumprod,
    cumsum,
    einsum,
    erf,
    floor,
    isclose,
    isfinite,
    isinf,
    isnan,
    logsumexp,
    prod,
    round,
    sinh,
    square,
    trunc,
)
from wally.ops_shape import diag, meshgrid, roll, rot90, tile, tril, triu, unbind
from wally.reference import corr2d, pool2d
from wally.size import Size
from wally.tensor import Tensor

# isort: split
# ----- gaps: torch's top-level names for ops wally implements under wally.nn.functional
# (same signature as torch.<name>), and wally._toplevel for those whose torch.<name>
# signature differs from F's (torch.dropout(input, p, train), torch.embedding(weight, ...)).
from wally._toplevel import (
    adaptive_max_pool1d,
    alpha_dropout,
    batch_norm,
    dropout,
    embedding,
    feature_alpha_dropout,
    feature_dropout,
    group_norm,
    instance_norm,
    layer_norm,
    max_pool1d,
    max_pool2d,
    max_pool3d,
)
from wally.functional.conv import conv1d, conv2d, conv3d
from wally.functional.conv_transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d
from wally.functional.pool import adaptive_avg_pool1d, avg_pool1d
from wally.functional.upsampling import channel_shuffle, pixel_shuffle, pixel_unshuffle
from wally.functional.weight_norm import _weight_norm, norm_except_dim
from wally.ops import all, any, fill, unflatten

# ----- end gaps -----

__version__ = "0.1.0"

_LAZY_SUBMODULES = {"analysis", "data", "io", "models", "onnx", "optim", "train", "utils"}


def __getattr__(name: str) -> object:
    """Import the heavier submodules on first use, so ``import wally`` stays fast."""
    import importlib

    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"wally.{name}")
    if name == "explore":  # the package, callable as its function wally.explore(model)
        return importlib.import_module("wally.explore")
    if name == "summary":
        return importlib.import_module("wally.analysis").summary
    if name in ("save", "load"):
        return getattr(importlib.import_module("wally.io.serialization"), name)
    raise AttributeError(f"module 'wally' has no attribute {name!r}")

