"""``wally.utils.tensorboard``: ``torch.utils.tensorboard`` for wally models.

:class:`SummaryWriter` writes TensorBoard event files with the ``tensorboard`` package's own
writer (``pip install tensorboard``, or the ``wally-cnn[tensorboard]`` extra), imported when a
writer is made; :class:`TensorBoardCallback` logs a :func:`wally.train.fit` run each epoch
(what ``wally train --tensorboard DIR`` uses).

>>> from wally.utils.tensorboard import SummaryWriter
>>> writer = SummaryWriter("runs/lenet")
>>> writer.add_scalar("loss", 0.25, global_step=1)
>>> writer.close()
"""

from wally.utils.tensorboard.callback import TensorBoardCallback
from wally.utils.tensorboard.writer import FileWriter, SummaryWriter

__all__ = ["FileWriter", "SummaryWriter", "TensorBoardCallback"]
