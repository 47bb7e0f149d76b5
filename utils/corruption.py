"""Impulse noise: the paper's salt-and-pepper and the impulses users meet besides it.

Every model replaces a random fraction ``nlevel`` of the image by impulses and leaves the rest
exactly as it was, drawn from its own seeded generator: the same seed gives the same corruption on
every machine and for every method and baseline, so that they are compared on the very same
observation.

- ``salt_pepper`` (the paper's): each element (every channel of every pixel independently) with
  probability ``nlevel`` set to 0 or 1, with equal chance;
- ``salt_pepper_pixel``: each pixel with probability ``nlevel`` set to 0 or 1 in all its channels
  at once (dead and hot pixels);
- ``random_valued``: each element with probability ``nlevel`` replaced by a value uniform in
  [0, 1] (random-valued impulses: no exact 0 or 1 to tell them by).
"""

import numpy as np
import skimage.util

from .errors import InputError
from .float_image import check_float_image


NOISE_MODELS = ("salt_pepper", "salt_pepper_pixel", "random_valued")
NOISE_NAMES = {"salt_pepper": "salt-and-pepper", "salt_pepper_pixel": "whole-pixel salt-and-pepper",
               "random_valued": "random-valued impulse"}  # for titles and captions


def corrupt(image, noise, nlevel, seed):
    """``image`` corrupted by the impulse model ``noise`` (one of ``NOISE_MODELS``) at density
    ``nlevel``, seeded by ``seed``.

    :param numpy.ndarray image: ``C x H x W`` float in [0, 1], any memory layout.
    :return: ``C x H x W`` ``float32`` in [0, 1]; the elements not chosen are ``image``'s own.
    :raises InputError: an image that is not float in [0, 1], ``nlevel`` outside [0, 1), or an
        unknown model.

    >>> image = np.full((3, 8, 8), 0.5, np.float32)
    >>> noisy = corrupt(image, "salt_pepper_pixel", 0.5, seed=0)
    >>> impulses = noisy != image
    >>> bool((impulses.all(axis=0) == impulses.any(axis=0)).all())  # whole pixels: all channels or none
    True
    >>> sorted(set(noisy[impulses].tolist())), noisy.dtype
    ([0.0, 1.0], dtype('float32'))
    >>> bool(np.array_equal(noisy, corrupt(image, "salt_pepper_pixel", 0.5, seed=0)))  # the seed decides
    True
    >>> impulses = corrupt(image, "random_valued", 0.5, seed=0) != image
    >>> bool((impulses.any(axis=0) & ~impulses.all(axis=0)).any())  # each element on its own
    True
    """
    if noise == "salt_pepper":
        return corrupt_salt_pepper(image, nlevel, seed)
    if noise not in NOISE_MODELS:
        raise InputError(f"`noise` must be one of {', '.join(NOISE_MODELS)}, got {noise!r}")
    _check(image, nlevel)
    rng = np.random.default_rng(seed)
    noisy = np.array(image, dtype=np.float32, order="C")
    if noise == "salt_pepper_pixel":
        chosen = rng.random(noisy.shape[1:]) < nlevel
        noisy[:, chosen] = rng.integers(0, 2, int(chosen.sum())).astype(np.float32)  # one value for every channel
    else:
        chosen = rng.random(noisy.shape) < nlevel
        noisy[chosen] = rng.random(int(chosen.sum()), dtype=np.float32)
    return noisy


def _check(image, nlevel):
    check_float_image(image)
    if not 0 <= nlevel < 1:
        raise InputError(f"`nlevel` must be in [0, 1), got {nlevel}")


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

    >>> image = np.full((3, 8, 8), 0.5, np.float32)
    >>> noisy = corrupt_salt_pepper(image, 0.5, seed=0)
    >>> impulses = noisy != image
    >>> sorted(set(noisy[impulses].tolist())), bool(0.3 < impulses.mean() < 0.7)
    ([0.0, 1.0], True)
    >>> bool((impulses.any(axis=0) & ~impulses.all(axis=0)).any())  # each channel on its own
    True
    """
    _check(image, nlevel)
    rng = np.random.default_rng(seed)
    noisy = skimage.util.random_noise(image, mode="s&p", amount=nlevel, rng=rng)
    return noisy.astype(np.float32)
