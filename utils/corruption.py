"""Salt-and-pepper corruption, as in the paper."""

import numpy as np
import skimage.util


def corrupt_salt_pepper(image, nlevel, seed):
    """Replace each element of ``image`` (every channel of every pixel independently) with
    probability ``nlevel`` by 0 or 1, with equal chance.

    This is ``skimage.util.random_noise(mode='s&p')``, the reference's corruption, made
    reproducible: the same ``seed`` gives the same corruption on every machine and for every
    method, so that methods and baselines are compared on the very same observation.

    :param numpy.ndarray image: ``C x H x W`` float in [0, 1].
    :param float nlevel: corrupted fraction, in [0, 1).
    :param int seed: seed of the corruption's own random generator.
    :return: ``C x H x W float32`` in [0, 1].
    """
    rng = np.random.default_rng(seed)
    noisy = skimage.util.random_noise(image, mode="s&p", amount=nlevel, rng=rng)
    return noisy.astype(np.float32)
