import pytest
import torch

from models import SkipEncoderDecoder, SparseCorruption

# docs/method.md: weights + biases + BatchNorm affine parameters of the reference network.
REFERENCE_PARAMETER_COUNTS = {
    8: 13_071,
    16: 42_679,
    32: 152_199,
    64: 572_455,
    128: 2_217_831,
    192: 4_936_359,
    256: 8_728_039,
}


@pytest.mark.parametrize("width,count", sorted(REFERENCE_PARAMETER_COUNTS.items()))
def test_parameter_count_matches_reference(width, count):
    net = SkipEncoderDecoder(width=width)
    assert sum(p.numel() for p in net.parameters()) == count


@pytest.mark.parametrize("width,count", sorted(REFERENCE_PARAMETER_COUNTS.items()))
def test_one_output_channel_drops_two_head_channels(width, count):
    net = SkipEncoderDecoder(out_channels=1, width=width)
    assert sum(p.numel() for p in net.parameters()) == count - 2 * (width + 1)


def test_one_channel_parameter_count_at_the_paper_width():
    """A grayscale image's network: the head's 1x1 convolution has two output channels fewer, each
    of width weights and a bias (docs/method.md)."""
    assert sum(p.numel() for p in SkipEncoderDecoder(out_channels=1, width=128).parameters()) == 2_217_573


def test_structure_per_scale():
    net = SkipEncoderDecoder(width=16)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    # per scale: skip 1x1, two down 3x3, merge 3x3 and 1x1; plus the 1x1 head
    assert len(convs) == 5 * 5 + 1
    assert all(c.bias is not None for c in convs)
    assert all(c.padding_mode == "reflect" for c in convs if c.kernel_size == (3, 3))
    strides = [c.stride for c in convs if c.kernel_size == (3, 3)]
    assert strides.count((2, 2)) == 5
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {bn.eps for bn in bns} == {1e-5} and {bn.momentum for bn in bns} == {0.1}
    assert sorted({bn.num_features for bn in bns}) == [4, 16, 20]
    first = net.body
    assert first.skip[0].in_channels == 32 and first.skip[0].out_channels == 4
    assert first.merge[0].num_features == 4 + 16


@pytest.mark.parametrize("shape", [(64, 64), (64, 96)])
@pytest.mark.parametrize("width", [4, 8])
def test_output_shape_and_range(shape, width):
    torch.manual_seed(0)
    net = SkipEncoderDecoder(width=width)
    out = net(torch.rand(1, 32, *shape) * 10)  # large inputs push the sigmoid to its ends
    assert out.shape == (1, 3) + shape
    assert out.min() >= 0 and out.max() <= 1


def test_batchnorm_uses_batch_statistics_in_training():
    torch.manual_seed(0)
    net = SkipEncoderDecoder(width=4).train()
    z = torch.rand(1, 32, 64, 64)
    before = net(z)
    for m in net.modules():  # corrupt running statistics: training output must not depend on them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(5.0)
    assert torch.equal(before, net(z))


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_corruption_initial_scale(seed):
    gen = torch.Generator().manual_seed(seed)
    corruption = SparseCorruption((1, 3, 64, 64), init_scale=1e-5, generator=gen)
    for p in (corruption.g, corruption.h):
        assert abs(p.std().item() - 1e-5) < 0.05e-5
        assert abs(p.mean().item()) < 0.05e-5
    s = corruption()
    assert torch.equal(s, corruption.g * corruption.g - corruption.h * corruption.h)
    assert s.abs().max() < 1e-8
