"""The over-parameterized sparse corruption s = g * g - h * h."""

import torch
from torch import nn


class SparseCorruption(nn.Module):
    """Hadamard-square parameterization of a sparse signal, s = g * g - h * h.

    g and h start as tiny i.i.d. Gaussians (std ``init_scale``), so s starts at almost zero and
    gradient descent with a large learning rate grows only the entries the data needs: the implicit
    bias toward sparse s that lets the method absorb impulses without an explicit penalty.

    :param tuple shape: shape of s, e.g. ``(1, 3, H, W)`` for one RGB image.
    :param float init_scale: standard deviation of the initial g and h (1e-5 in the paper).
    :param torch.Generator generator: optional source of the initial values.

    Output of ``forward()``: tensor of ``shape``, float, unbounded (in practice within [-1, 1]
    once fitted to impulses of an image in [0, 1]).
    """

    def __init__(self, shape, init_scale=1e-5, generator=None):
        super().__init__()
        self.g = nn.Parameter(torch.randn(shape, generator=generator) * init_scale)
        self.h = nn.Parameter(torch.randn(shape, generator=generator) * init_scale)

    def forward(self):
        return self.g * self.g - self.h * self.h
