"""Models of the double over-parameterization: the image network and the sparse corruption."""

from .skip_encoder_decoder import SkipEncoderDecoder
from .sparse_corruption import SparseCorruption

__all__ = ["SkipEncoderDecoder", "SparseCorruption"]
