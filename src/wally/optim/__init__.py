"""Optimisers and learning-rate schedules, PyTorch's ``torch.optim``.

``wally.optim.SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``, ``NAdam`` and ``RAdam``
follow PyTorch's update rules step for step; ``wally.optim.lr_scheduler`` holds the
schedules. Every optimiser updates its parameters' arrays in place, so views of them (and
modules holding them) see the new values.
"""

from wally.optim import lr_scheduler
from wally.optim.adagrad import Adagrad
from wally.optim.adam import Adam, AdamW
from wally.optim.nadam import NAdam
from wally.optim.optimizer import Optimizer
from wally.optim.radam import RAdam
from wally.optim.rmsprop import RMSprop
from wally.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam",
           "lr_scheduler"]
