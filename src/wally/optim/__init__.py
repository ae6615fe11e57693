"""Optimisers and learning-rate schedules, PyTorch's ``torch.optim``.

``wally.optim.SGD``, ``Adam``, ``AdamW`` and ``RMSprop`` follow PyTorch's update rules step
for step; ``wally.optim.lr_scheduler`` holds the schedules. Every optimiser updates its
parameters' arrays in place, so views of them (and modules holding them) see the new values.
"""

from wally.optim import lr_scheduler
from wally.optim.adam import Adam, AdamW
from wally.optim.optimizer import Optimizer
from wally.optim.rmsprop import RMSprop
from wally.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
