"""``wally.utils.data`` is :mod:`wally.data`, under PyTorch's ``torch.utils.data`` path."""

from wally.data import *  # noqa: F403
from wally.data import __all__  # noqa: F401
