"""Stateless differentiable operations, PyTorch's ``torch.nn.functional``.

Layers in :mod:`wally.nn` hold parameters and call these in one line.
"""

from wally.functional.activation import *  # noqa: F403
from wally.functional.conv import *  # noqa: F403
from wally.functional.distance import *  # noqa: F403
from wally.functional.linear import *  # noqa: F403
from wally.functional.loss import *  # noqa: F403
from wally.functional.norm import *  # noqa: F403
from wally.functional.padding import *  # noqa: F403
from wally.functional.pool import *  # noqa: F403
