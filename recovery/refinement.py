"""The refined answer: the impulses detected with what the impulse model knows, then filled from
the image around them, guided by the network's output (or, for impulses of any value, by a
classical estimate where it explains the image better).

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
  highlight), or an impulse that hardly changed it. Where the impulses may take any value
  (``random_valued``, a ``noisy`` file whose strong impulses are not 0 and 1) nothing is known of
  the values. There the guide is whichever of e and a classical estimate made from y alone (the
  baseline made for such impulses: ROAD's impulses inpainted, then BM3D) explains the elements
  ROAD keeps better (the smaller residual scale there), and an impulse is an element farther from
  the guide than ``ANY_VALUE_SIGMAS`` of its residual scales there. A network that has not fitted
  fine texture leaves a residual there that hides impulses of middling value; the classical
  estimate follows the texture it keeps, and the fit of the kept elements says which is better.
- **Fill.** Each impulse found becomes the guide (e, or the classical estimate where it was chosen)
  plus the residual of the kept elements around it, inpainted (scikit-image's biharmonic
  inpainting, channel by channel): the guide gives the image's shape, the kept neighbours the
  texture it has not fitted.
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
# |y - guide| over the guide's residual scale above which an element of any value is an impulse: 5
# where ROAD flags at most 10% of the elements, falling linearly to 3 where it flags 35% or more.
# The more ROAD flags, the more impulses it misses among those it keeps, and the more they widen the
# scale read there. Tuned at 10%, 30% and 50% (the best of 3, 4, 5 fell with ROAD's fraction).
ANY_VALUE_SIGMAS = (5.0, 3.0)
ANY_VALUE_FLAGGED = (0.10, 0.35)  # the fractions ROAD flags at which ANY_VALUE_SIGMAS's two values hold
BM3D_SIGMA = 0.03  # BM3D's sigma (data range 1) on the fills: the best mean of 0.015, 0.03 and 0.045 when tuned
STRONG_IMPULSE = 0.25  # |s| above which an element is surely an impulse, for the check of a file's impulse model
REFINED_LABEL = "refined (impulses detected by value, filled, BM3D)"  # how every output names the refined answer


@dataclasses.dataclass(frozen=True, eq=False)
class ImpulseDetector:
    """The run's detector with what it knows of the run: whether its impulses are 0 and 1
    (``extreme_values``: its ``noise`` is one of ``EXTREME_NOISES``), or None for a ``noisy`` file,
    whose impulses are taken for 0 and 1 where most of the strong impulses found are
    (:func:`strong_impulses_extreme`); the bit depth of its observation; and, where its impulses
    may take any value, the classical estimate the any-value rule weighs the network against
    (:func:`classical_estimate`: ``classical``, and ``kept``, where ROAD finds no impulse).

    Called with y, the network's estimate e and s (``C x H x W`` float tensors on one device) and
    a ``sign`` (``both``, ``salt``, ``pepper``: the impulses brighter or darker than the guide
    only), it returns the impulses found (bool) and the guide the fill follows (float), both of
    their shape: :func:`detect_extreme_impulses` and e, or :func:`detect_any_value_impulses`."""

    extreme_values: typing.Optional[bool]
    bit_depth: int = 8
    classical: typing.Optional[torch.Tensor] = None
    kept: typing.Optional[torch.Tensor] = None

    @classmethod
    def for_run(cls, config, observed, bit_depth, refined=True):
        """The detector of a run of ``config`` (a RecoveryConfig) on ``observed`` (its y, ``C x H x
        W`` float tensor in [0, 1]) of ``bit_depth`` bits. Where the impulses may take any value,
        the classical estimate is made here, once, for a run that makes a refined answer
        (``refined``; BM3D's seconds are the refined answer's cost); without it (or without the
        ``bm3d`` package) the detector there is the final answer's, ``evaluation.impulse_mask``."""
        extreme = None if config.noisy is not None else config.noise in EXTREME_NOISES
        if extreme or not config.has_corruption_term:
            return cls(extreme, bit_depth)
        classical, kept = classical_estimate(observed.cpu().numpy(), with_bm3d=refined)
        to_device = lambda array: None if array is None else torch.from_numpy(array).to(observed.device)  # noqa: E731
        return cls(extreme, bit_depth, to_device(classical), to_device(kept))

    def __call__(self, observed, estimate, impulses, sign="both"):
        if self.extreme_values:
            found, guide = detect_extreme_impulses(observed, estimate, self.bit_depth), estimate
        else:
            if self.classical is None:  # no refined answer: the final answer's own detector
                found, guide = impulse_mask(impulses), estimate
            else:
                found, guide = detect_any_value_impulses(observed, estimate, self.classical, self.kept)
            if self.extreme_values is None:
                extreme = strong_impulses_extreme(observed, impulses, self.bit_depth)[0]
                found = torch.where(extreme, detect_extreme_impulses(observed, estimate, self.bit_depth), found)
                guide = torch.where(extreme, estimate, guide)
        return of_sign(found, observed, guide, sign), guide


def of_sign(found, observed, guide, sign):
    """The impulses ``found`` (bool) of one ``sign``: all for ``both``, those brighter than the
    ``guide`` for ``salt``, darker for ``pepper`` (``observed`` and ``guide``: float tensors of
    ``found``'s shape and device).

    >>> of_sign(torch.tensor([True, True, False]), torch.tensor([0.9, 0.1, 0.9]), torch.full((3,), 0.5), "salt")
    tensor([ True, False, False])
    """
    if sign == "salt":
        return found & (observed > guide)
    if sign == "pepper":
        return found & (observed < guide)
    return found


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


def detect_extreme_impulses(observed, estimate, bit_depth=8):
    """The impulses under a model whose impulses are 0 and 1: the extreme elements of ``observed``
    (y) farther from ``estimate`` (e) than ``RESIDUAL_SIGMAS`` residual scales, measured on the
    other elements (all clean); where every element is extreme no scale can be read, and none is
    found. ``observed`` and ``estimate``: float tensors of one shape and device, in [0, 1]; returns
    bool of their shape. No host synchronisation.

    A clean black element (its estimate near 0), pepper, a clean grey element, salt:

    >>> y = torch.tensor([0.0, 0.0, 0.5, 1.0, 0.52, 0.48])
    >>> e = torch.tensor([0.01, 0.6, 0.5, 0.3, 0.5, 0.5])
    >>> detect_extreme_impulses(y, e)
    tensor([False,  True, False,  True, False, False])
    """
    residual = observed - estimate
    candidates = extreme_elements(observed, bit_depth)
    return candidates & (residual.abs() > RESIDUAL_SIGMAS * residual_scale(residual, ~candidates))


def detect_any_value_impulses(observed, estimate, classical, kept):
    """The impulses where they may take any value: the guide is whichever of the network's
    ``estimate`` and the ``classical`` one explains the elements ``kept`` better (the smaller
    residual scale there; the network's on a tie), and an impulse is an element farther from the
    guide than :func:`any_value_sigmas` of its residual scales there. Float tensors of one shape
    and device in [0, 1] (``kept`` bool); returns the impulses found (bool) and the guide. No host
    synchronisation.

    >>> y = torch.tensor([0.5, 0.52, 0.48, 0.51, 0.49, 0.9, 0.55])
    >>> e, classical = torch.full((7,), 0.5), torch.full((7,), 0.3)  # the network explains y better
    >>> found, guide = detect_any_value_impulses(y, e, classical, y < 0.8)
    >>> found, torch.equal(guide, e)
    (tensor([False, False, False, False, False,  True, False]), True)
    """
    network_scale, classical_scale = (residual_scale(observed - guess, kept) for guess in (estimate, classical))
    guide = torch.where(network_scale <= classical_scale, estimate, classical)
    residual = observed - guide
    return residual.abs() > any_value_sigmas(kept) * residual_scale(residual, kept), guide


def any_value_sigmas(kept):
    """The any-value threshold in residual scales (``ANY_VALUE_SIGMAS``, by the fraction of
    elements ROAD flags: those not ``kept``, a bool tensor): a 0-dim float32 tensor on its device.

    >>> [round(any_value_sigmas(torch.arange(100) >= flagged).item(), 4) for flagged in (0, 10, 20, 35, 90)]
    [5.0, 5.0, 4.2, 3.0, 3.0]
    """
    flagged = 1 - kept.float().mean()
    (low, high), (most, least) = ANY_VALUE_FLAGGED, ANY_VALUE_SIGMAS
    return most + (least - most) * ((flagged - low) / (high - low)).clamp(0, 1)


def classical_estimate(observed, with_bm3d=True):
    """What the any-value rule weighs the network against, made from the observation alone: the
    baseline made for random-valued impulses (``utils.road.road_fill_then_bm3d``: ROAD's impulses
    inpainted, then BM3D), and where ROAD finds no impulse (``kept``), the elements the residual
    scales are read on. ``observed``: ``C x H x W`` float numpy array in [0, 1]; returns a ``C x H
    x W float32`` array and a bool one, or None and None without ``with_bm3d``, without the
    ``bm3d`` package or for an image BM3D cannot take (ROAD's eight differences per element are
    not worth their memory then)."""
    # Imported here: a run under a 0/1 model pays neither scikit-image's import nor bm3d's.
    from utils.baselines import check_bm3d_input
    from utils.errors import InputError
    from utils.optional import import_optional
    from utils.road import road_detect, road_fill_then_bm3d

    observed = np.asarray(observed, dtype=np.float32)
    if not with_bm3d:
        return None, None
    try:
        import_optional("bm3d")
        check_bm3d_input(observed)
    except InputError:
        return None, None
    detected = road_detect(observed)
    return road_fill_then_bm3d(observed, detected=detected), ~detected


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
