"""The Deep Image Prior "skip" encoder-decoder phi(theta; z) used by the paper."""

import torch
from torch import nn


def conv_bn_act(in_channels, out_channels, kernel_size, stride=1, act=True):
    """Convolution (reflection padded, with bias) -> BatchNorm -> optional LeakyReLU(0.2)."""
    layers = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            padding_mode="reflect",
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if act:
        layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class SkipScale(nn.Module):
    """One scale of the encoder-decoder and, recursively, every coarser scale below it.

    The input ``B x in_channels x H x W`` goes two ways: a 1x1 skip branch to ``skip_channels``
    and a stride-2 deeper branch (through the coarser scales, then bilinear upsampling back to
    ``H x W``). The two are concatenated and merged into ``B x width x H x W``.
    """

    def __init__(self, in_channels, width, skip_channels, depth):
        super().__init__()
        self.skip = conv_bn_act(in_channels, skip_channels, 1)
        self.down = nn.Sequential(
            conv_bn_act(in_channels, width, 3, stride=2),
            conv_bn_act(width, width, 3),
        )
        self.merge = nn.Sequential(
            nn.BatchNorm2d(skip_channels + width),
            conv_bn_act(skip_channels + width, width, 3),
            conv_bn_act(width, width, 1),
        )
        # Built after this scale's layers so that default initialisation draws random numbers in
        # the same order as the reference's model builder.
        self.inner = SkipScale(width, width, skip_channels, depth - 1) if depth > 1 else None
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x):
        deeper = self.down(x)
        if self.inner is not None:
            deeper = self.inner(deeper)
        deeper = self.up(deeper)
        return self.merge(torch.cat([self.skip(x), deeper], dim=1))


class SkipEncoderDecoder(nn.Module):
    """Deep Image Prior skip network: ``num_scales`` stride-2 scales with 1x1 skip connections.

    :param int in_channels: channels of the input code z (32 in the paper).
    :param int out_channels: channels of the output image (3 for RGB).
    :param int width: channels of every down and up convolution (128 in the paper).
    :param int skip_channels: channels of each skip connection (4 in the paper).
    :param int num_scales: number of stride-2 scales (5 in the paper).

    Input: ``B x in_channels x H x W``, of the parameters' dtype (float32 unless converted), with
    H and W multiples of ``2 ** num_scales`` and at least twice that: at the coarsest scale,
    reflection padding needs 2 pixels a side and BatchNorm more than one value per channel.
    Output: ``B x out_channels x H x W`` of that dtype, in [0, 1] (sigmoid head).

    BatchNorm is meant to stay in training mode: the paper fits one image, so batch statistics
    are that image's statistics at every iteration.
    """

    def __init__(self, in_channels=32, out_channels=3, width=128, skip_channels=4, num_scales=5):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        self.num_scales = num_scales
        self.body = SkipScale(in_channels, width, skip_channels, num_scales)
        self.head = nn.Sequential(nn.Conv2d(width, out_channels, 1), nn.Sigmoid())

    def forward(self, z):
        return self.head(self.body(z))
