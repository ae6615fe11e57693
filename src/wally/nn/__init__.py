"""Blocks: layers, groups of layers and whole models, PyTorch's ``torch.nn``."""

from wally.nn import functional, init, utils
from wally.nn.activation import *  # noqa: F403
from wally.nn.activation_extra import *  # noqa: F403
from wally.nn.container import *  # noqa: F403
from wally.nn.conv import *  # noqa: F403
from wally.nn.conv_transpose import *  # noqa: F403
from wally.nn.distance import *  # noqa: F403
from wally.nn.dropout import *  # noqa: F403
from wally.nn.graph_conv import *  # noqa: F403
from wally.nn.group_conv import *  # noqa: F403
from wally.nn.linear import *  # noqa: F403
from wally.nn.loss import *  # noqa: F403
from wally.nn.loss_more import *  # noqa: F403
from wally.nn.module import *  # noqa: F403
from wally.nn.norm import *  # noqa: F403
from wally.nn.normalization import *  # noqa: F403
from wally.nn.parameter import *  # noqa: F403
from wally.nn.pool import *  # noqa: F403
from wally.nn.sequence import *  # noqa: F403
from wally.nn.sparse import *  # noqa: F403
from wally.nn.temporal_pool import *  # noqa: F403
from wally.nn.upsampling import *  # noqa: F403
