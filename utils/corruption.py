"""Salt-and-pepper corruption, as in the paper."""

import numpy as np
import skimage.util

from .errors import InputError
from .float_image import check_float_image


def corrupt_salt_pepper(image, nlevel, seed):
    """Replace each element of ``image`` (every channel of every pixel independently) with
    probability ``nlevel`` by 0 or 1, with equal chance.

    This is ``skimage.util.random_noise(mode='s&p')``, the reference's corruption, made
    reproducible: the same ``seed`` gives the same corruption on every machine and for every
    method, so that methods and baselines are compared on the very same observation.

    :param numpy.ndarray image: float in [0, 1], any shape (here ``C x H x W``): every element is
        corrupted independently.
    :param float nlevel: corrupted fraction, in [0, 1).
    :param int seed: seed of the corruption's own random generator.
    :return: ``float32`` in [0, 1], the shape of ``image``.
    :raises InputError: an image that is not float in [0, 1] (scikit-image would rescale or clip
        it without a word), or ``nlevel`` outside [0, 1).
    """
    check_float_image(image)
    if not 0 <= nlevel < 1:
        raise InputError(f"`nlevel` must be in [0, 1), got {nlevel}")
    rng = np.random.default_rng(seed)
    noisy = skimage.util.random_noise(image, mode="s&p", amount=nlevel, rng=rng)
    return noisy.astype(np.float32)
