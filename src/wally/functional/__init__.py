"""Stateless differentiable operations, PyTorch's ``torch.nn.functional``.

Layers in :mod:`wally.nn` hold parameters and call these in one line.
"""

from wally.functional.activation import *  # noqa: F403
from wally.functional.activation_extra import *  # noqa: F403
from wally.functional.causal import *  # noqa: F403
from wally.functional.conv import *  # noqa: F403
from wally.functional.conv_transpose import *  # noqa: F403
from wally.functional.distance import *  # noqa: F403
from wally.functional.dropout import *  # noqa: F403
from wally.functional.linear import *  # noqa: F403
from wally.functional.loss import *  # noqa: F403
from wally.functional.loss_margin import *  # noqa: F403
from wally.functional.loss_regression import *  # noqa: F403
from wally.functional.norm import *  # noqa: F403
from wally.functional.normalization import *  # noqa: F403
from wally.functional.padding import *  # noqa: F403
from wally.functional.pool import *  # noqa: F403
from wally.functional.sparse import *  # noqa: F403
from wally.functional.temporal_pool import *  # noqa: F403
from wally.functional.upsampling import *  # noqa: F403
