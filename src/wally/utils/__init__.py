"""``wally.utils``, so that ``from torch.utils import data`` style code runs."""

from wally.utils import data

__all__ = ["data"]
