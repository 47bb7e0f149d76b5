"""The refined answer: the impulses detected with what the impulse model knows, then filled from
the image around them, guided by the network's output.

The final answer (``evaluation.FINAL``) takes every element whose |s| exceeds a fixed 2/255 for an
impulse and replaces it with the network's output. Where the network has not fitted fine texture
(small or short runs), s takes up the texture too, and clean elements are replaced by a blurry
estimate. The refined answer uses three things the run knows without the clean image:

- **Detect.** Under an impulse model whose impulses are 0 and 1 (``salt_pepper``,
  ``salt_pepper_pixel``: ``EXTREME_NOISES``; for a ``noisy`` file, where most of the strong
  impulses the run's s finds are 0 or 1) an element whose observed value is not extreme (within
  half a level of the file's bit depth of 0 or 1) is never an impulse. An extreme element is one
  where it lies far from the network's estimate e (the averaged network on z): ``|y - e|`` above
  ``RESIDUAL_SIGMAS`` times the fit's own residual scale, read from the elements known to be clean
  (1.4826 times the median ``|y - e|`` there, the Gaussian-consistent median absolute deviation).
  An extreme element close to the estimate is a clean one at 0 or 1 (a black surround, a
  highlight), or an impulse that hardly changed it. Under ``random_valued`` nothing is known of the
  values, and an element is an impulse where the run's |s| and ``|y - e|`` both say so.
- **Fill.** Each impulse found becomes e plus the residual ``y - e`` of the kept elements around it,
  inpainted (scikit-image's biharmonic inpainting, channel by channel): the network gives the
  image's shape, the kept neighbours the texture it has not fitted.
- **Denoise.** The fills are denoised by BM3D (what the ``bm3d`` package gives, as in the
  baselines) with a sigma of ``BM3D_SIGMA``, and the elements kept stay exactly as observed. The
  best sigma hardly follows the density (a fill's error depends more on how well its surroundings
  are known than on how many impulses there are), so it is one constant.

The constants were tuned on scikit-image samples never reported (astronaut, coffee, chelsea,
rocket, camera): docs/impulse_noise.md has the tuning table.
"""

import dataclasses
import typing

import numpy as np
import torch

from .evaluation import impulse_mask

EXTREME_NOISES = ("salt_pepper", "salt_pepper_pixel")  # impulse models whose impulses are 0 or 1
MAD_TO_SIGMA = 1.4826  # a Gaussian's standard deviation over its median absolute deviation
RESIDUAL_SIGMAS = 1.0  # |y - e| over the fit's residual scale above which an extreme element is an impulse
BM3D_SIGMA = 0.03  # BM3D's sigma (data range 1) on the fills: the best mean of 0.015, 0.03 and 0.045 when tuned
STRONG_IMPULSE = 0.25  # |s| above which an element is surely an impulse, for the check of a file's impulse model
REFINED_LABEL = "refined (impulses detected by value, filled, BM3D)"  # how every output names the refined answer


@dataclasses.dataclass(frozen=True)
class ImpulseDetector:
    """The run's detector (:func:`detect_impulses`) with what it knows of the run: whether its
    impulses are 0 and 1 (``extreme_values``: its ``noise`` is one of ``EXTREME_NOISES``), or None
    for a ``noisy`` file, whose impulses are taken for 0 and 1 where most of the strong impulses
    found are (:func:`strong_impulses_extreme`); and the bit depth of its observation."""

    extreme_values: typing.Optional[bool]
    bit_depth: int = 8

    @classmethod
    def for_run(cls, config, bit_depth):
        """The detector of a run of ``config`` (a RecoveryConfig) on an observation of ``bit_depth`` bits."""
        return cls(None if config.noisy is not None else config.noise in EXTREME_NOISES, bit_depth)

    def __call__(self, observed, estimate, impulses, sign="both"):
        if self.extreme_values is not None:
            return detect_impulses(observed, estimate, impulses, self.extreme_values, self.bit_depth, sign)
        found = [detect_impulses(observed, estimate, impulses, extreme, self.bit_depth, sign) for extreme in (True, False)]
        return torch.where(strong_impulses_extreme(observed, impulses, self.bit_depth)[0], *found)


def strong_impulses_extreme(observed, impulses, bit_depth=8):
    """Whether at least half of the elements where the run's s is large (|s| above
    ``STRONG_IMPULSE``) are extreme in ``observed`` (tensors of one shape), as they all are where
    the impulses are 0 and 1 (True too where s is nowhere that large: the paper's model), and that
    share (NaN then): 0-dim tensors, without host synchronisation.

    >>> y, s = torch.tensor([0.0, 1.0, 0.3, 0.5]), torch.tensor([-0.5, 0.6, 0.4, 0.0])
    >>> strong_impulses_extreme(y, s)
    (tensor(True), tensor(0.6667))
    """
    strong = impulses.abs() > STRONG_IMPULSE
    count, extreme = strong.sum(), (strong & extreme_elements(observed, bit_depth)).sum()
    return 2 * extreme >= count, extreme / count


def extreme_elements(observed, bit_depth=8):
    """Where ``observed`` (a float tensor in [0, 1]) is 0 or 1, to within half a level of a file of
    ``bit_depth`` bits: bool, of its shape.

    >>> extreme_elements(torch.tensor([0.0, 1 / 255, 0.5, 254 / 255, 1.0]))
    tensor([ True, False, False, False,  True])
    """
    half_level = 0.5 / (2**bit_depth - 1)
    return (observed <= half_level) | (observed >= 1 - half_level)


def residual_scale(residual, clean):
    """The fit's residual scale: ``MAD_TO_SIGMA`` times the median ``|residual|`` over the elements
    ``clean`` (bool, of its shape), a 0-dim tensor; NaN where none is clean. No host
    synchronisation."""
    return MAD_TO_SIGMA * torch.nanmedian(torch.where(clean, residual.abs(), torch.nan))


def detect_impulses(observed, estimate, impulses, extreme_values, bit_depth=8, sign="both"):
    """The refined answer's impulses: bool, of the inputs' shape (``1 x C x H x W`` or ``C x H x
    W`` float tensors, one device): ``observed`` y, ``estimate`` e in [0, 1] and ``impulses`` s.
    No host synchronisation.

    With ``extreme_values`` (an impulse model whose impulses are 0 and 1) an impulse is an extreme
    element farther from e than ``RESIDUAL_SIGMAS`` residual scales (measured on the other
    elements, all clean); where every element is extreme no scale can be read, and none is
    found. Otherwise it is an element the final answer takes for one (``evaluation.impulse_mask``:
    ``|s|`` above ``FILL_THRESHOLD``) and whose
    ``|y - e|`` exceeds ``RESIDUAL_SIGMAS`` residual scales of the whole image. ``sign`` ``salt``
    or ``pepper`` keeps the impulses brighter or darker than e only.

    A clean black element (its estimate near 0), pepper, a clean grey element, salt:

    >>> y = torch.tensor([0.0, 0.0, 0.5, 1.0, 0.52, 0.48])
    >>> e = torch.tensor([0.01, 0.6, 0.5, 0.3, 0.5, 0.5])
    >>> detect_impulses(y, e, y - e, extreme_values=True)
    tensor([False,  True, False,  True, False, False])
    """
    residual = observed - estimate
    if extreme_values:
        candidates = extreme_elements(observed, bit_depth)
        found = candidates & (residual.abs() > RESIDUAL_SIGMAS * residual_scale(residual, ~candidates))
    else:
        everywhere = torch.ones_like(residual, dtype=torch.bool)
        found = (impulse_mask(impulses)
                 & (residual.abs() > RESIDUAL_SIGMAS * residual_scale(residual, everywhere)))
    if sign == "salt":
        return found & (residual > 0)
    if sign == "pepper":
        return found & (residual < 0)
    return found


def fill_from_surroundings(observed, estimate, found):
    """Every element ``found`` replaced by ``estimate`` plus the residual ``observed - estimate``
    inpainted there from the other elements of its channel (biharmonic); the others as observed.
    ``C x H x W`` float numpy arrays in [0, 1] (``found`` bool), any memory layout; returns a new
    ``C x H x W float32`` array in [0, 1]. A channel whose every element was found takes the
    estimate there: it has no surroundings to inpaint from."""
    import skimage.restoration  # here: a run that makes no refined answer does not pay its import

    observed, estimate = (np.asarray(image, dtype=np.float32) for image in (observed, estimate))
    residual = observed - estimate
    filled = observed.copy()
    for channel in range(observed.shape[0]):
        where = np.ascontiguousarray(found[channel])
        if not where.any():
            continue
        inpainted = np.zeros_like(residual[channel])
        if not where.all():
            kept_residual = np.where(where, 0.0, residual[channel])  # what lies under the impulses is unknown
            inpainted = skimage.restoration.inpaint_biharmonic(kept_residual, where)
        filled[channel][where] = np.clip(estimate[channel] + inpainted, 0.0, 1.0)[where]
    return filled


def refine(observed, estimate, found):
    """The refined answer: :func:`fill_from_surroundings`, then BM3D of sigma ``BM3D_SIGMA`` on
    the fills, the other elements kept as observed. ``C x H x W`` float numpy arrays in [0, 1], C 1 or 3, H and
    W at least ``utils.baselines.BM3D_MIN_SIDE`` (``found`` bool); returns ``C x H x W float32``
    in [0, 1]. Needs the ``bm3d`` package (:func:`utils.optional.import_optional`)."""
    from utils.baselines import bm3d_denoise  # here, as scikit-image's inpainting in the fill

    found = np.asarray(found, dtype=bool)
    filled = fill_from_surroundings(observed, estimate, found)
    if not found.any():
        return filled
    return np.where(found, bm3d_denoise(filled, BM3D_SIGMA), filled)
