# d2l-en 1.0.3, chapter_convolutional-neural-networks/pooling.md: its 10 PyTorch code cells, verbatim (MIT-0, see ../LICENSE-SAMPLECODE).
# %% cell 0
from d2l import torch as d2l
import torch
from torch import nn
# %% cell 1
def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = d2l.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y
# %% cell 2
X = d2l.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
pool2d(X, (2, 2))
# %% cell 3
pool2d(X, (2, 2), 'avg')
# %% cell 4
X = d2l.reshape(d2l.arange(16, dtype=d2l.float32), (1, 1, 4, 4))
X
# %% cell 5
pool2d = nn.MaxPool2d(3)
# Pooling has no model parameters, hence it needs no initialization
pool2d(X)
# %% cell 6
pool2d = nn.MaxPool2d(3, padding=1, stride=2)
pool2d(X)
# %% cell 7
pool2d = nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))
pool2d(X)
# %% cell 8
X = d2l.concat((X, X + 1), 1)
X
# %% cell 9
pool2d = nn.MaxPool2d(3, padding=1, stride=2)
pool2d(X)
