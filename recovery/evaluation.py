"""Answers computed beside the last training iterate, without the clean image.

The reference reports the network's output at the last iteration, on the *perturbed* input
``z + noise`` (std 1/30): it jitters with the perturbation. Each candidate here is a better-behaved
estimate of the same image, computed from the run alone:

- ``on_z``: the current network on the unperturbed z (one forward pass at each logged iteration);
- ``output_ema``: the exponential moving average of the training outputs phi, over every
  iteration (Deep Image Prior's own code averages its outputs the same way);
- ``weight_ema``: the current average of the network's weights (Polyak averaging with an
  exponential window), evaluated on z at each logged iteration;
- ``y_minus_s``: the other half of the model, y = x + s read as x = y - s (clipped to [0, 1]): the
  observation less the estimated corruption, for the methods that have one (``ours``). Where s
  has not grown (an element the run takes for uncorrupted) it is the observed value, to within s;
- ``filled``: detect and fill with the run's own detector: ``y_minus_s`` where |s| is at most
  ``FILL_THRESHOLD`` (an element the run takes for uncorrupted keeps its observed value, to within
  the threshold), the ``weight_ema`` output wherever |s| is larger (an impulse the run found,
  filled by the averaged network). With ``remove`` salt or pepper (``RecoveryConfig.remove``) only
  the impulses of that sign are filled, and those of the other sign keep their observed value (hot
  or dead pixels alone). Without a corruption term no element is known to be clean, and it is
  ``weight_ema``.

BatchNorm stays in training mode in every pass, as in training (batch statistics of z itself),
and no pass touches the training state: the running statistics are not updated, the noise
generator is not drawn from, nothing is differentiated. The averages are the only state, kept in
the run's checkpoint so that a resumed run computes the very same numbers.

``FINAL`` is the candidate a run writes as ``<ckpt>_final.png``; the constants were chosen on
scikit-image's samples, never on the paper's images (docs/evaluation.md).
"""

import contextlib
import copy
import math

import torch

# The weight each average keeps per iteration (its window is about 1 / (1 - weight) iterations):
# the best of 0.9 to 0.999 on scikit-image's astronaut, coffee and chelsea at 50% (docs/evaluation.md).
OUTPUT_EMA_WEIGHT = 0.98
WEIGHT_EMA_WEIGHT = 0.9
# |s| above which an element counts as an impulse the run found: of 1/255 to 64/255, the one whose
# smallest gain over the last iterate is largest on the same samples at 50% and on rocket at 10% and
# 70% (docs/evaluation.md).
FILL_THRESHOLD = 2 / 255
CANDIDATES = ("on_z", "output_ema", "weight_ema", "y_minus_s", "filled")
FINAL = "filled"
ESTIMATE = "weight_ema"  # the candidate that fills the impulses found, here and in the refined answer
DESCRIPTIONS = {  # short, for the table's iterate column, the figures' rows and the panel's captions
    "on_z": "output on z",
    "output_ema": "output EMA",
    "weight_ema": "weight EMA on z",
    "y_minus_s": "y - s",
    "filled": "y with impulses filled",
}
FINAL_LABEL = f"final ({DESCRIPTIONS[FINAL]})"  # how every output names the final answer


def fill_impulses(observed, observed_less_s, impulses, estimate, threshold, remove="both"):
    """The final answer ``filled``: ``estimate`` where impulses of the sign ``remove`` were found,
    ``observed`` (y) where impulses of the other sign were found (kept as observed), and
    ``observed_less_s`` (clipped y - s, the observed value to within ``threshold``) elsewhere. All
    tensors of one shape, e.g. ``1 x C x H x W`` float32 in [0, 1] (s, ``impulses``, in [-1, 1]).

    A pepper impulse found, an element the run takes for clean (|s| within the threshold), a salt
    impulse found, a clean element:

    >>> y, s = torch.tensor([0.0, 0.5, 1.0, 0.3]), torch.tensor([-0.4, 0.001, 0.6, 0.0])
    >>> estimate = torch.full((4,), 0.2)
    >>> fill_impulses(y, (y - s).clamp(0, 1), s, estimate, threshold=2 / 255)
    tensor([0.2000, 0.4990, 0.2000, 0.3000])
    >>> fill_impulses(y, (y - s).clamp(0, 1), s, estimate, 2 / 255, remove="salt")  # pepper kept as observed
    tensor([0.0000, 0.4990, 0.2000, 0.3000])
    """
    kept = observed_less_s
    if remove != "both":
        kept = torch.where(impulse_mask(impulses, threshold), observed, observed_less_s)
    return torch.where(impulse_mask(impulses, threshold, remove), estimate, kept)


# The history's columns of the detection: the fraction of elements the run takes for impulses (a
# blind estimate of the density), and, where the truly corrupted elements are known, the
# detection's precision and recall against them.
DETECTION_FIELDS = ("impulses_found", "precision", "recall")


def impulse_mask(impulses, threshold=FILL_THRESHOLD, sign="both"):
    """Where the run found an impulse: ``|s| > threshold``, the detector of ``filled``; of one sign
    only with ``sign`` ``salt`` (s > threshold: brighter than the image) or ``pepper`` (s <
    -threshold). ``impulses`` (s) is a float tensor or numpy array; returns a bool one of its shape.

    >>> s = torch.tensor([-0.4, 0.001, 0.6, 0.0])
    >>> impulse_mask(s), impulse_mask(s, sign="salt"), impulse_mask(s, sign="pepper")
    (tensor([ True, False,  True, False]), tensor([False, False,  True, False]),
     tensor([ True, False, False, False]))
    """
    if sign == "salt":
        return impulses > threshold
    if sign == "pepper":
        return impulses < -threshold
    return abs(impulses) > threshold


def detection(found, corrupted=None):
    """``[impulses_found]``, or with ``corrupted`` (the truly corrupted elements)
    ``[impulses_found, precision, recall]``: float32 tensors on the device of ``found`` (bool
    tensors of one shape), without host synchronisation. A ratio of 0 / 0 (nothing found: no
    precision; nothing corrupted: no recall) is NaN, which :func:`detection_row` makes None."""
    found_count = found.sum(dtype=torch.float32)
    values = [found_count / found.numel()]
    if corrupted is not None:
        hits = (found & corrupted).sum(dtype=torch.float32)
        values += [hits / found_count, hits / corrupted.sum(dtype=torch.float32)]  # 0 / 0 is NaN
    return values


def detection_row(values):
    """``{field: value}`` of the history's detection columns from the numbers of :func:`detection`
    (as many as it gave): a ratio of 0 / 0 is None (an empty cell), as a missing one."""
    return {field: None if math.isnan(value) else value for field, value in zip(DETECTION_FIELDS, values)}


def describe_detection(row, corruption_known):
    """The closing line of a history ``row`` with the detection's columns; with ``corruption_known``
    (a clean image) the precision and recall too, "n/a" where the ratio is 0 / 0."""
    line = f"impulses found: {row['impulses_found']:.1%} of the elements"
    if corruption_known:
        line += (f"; against the truly corrupted: precision {_ratio(row['precision'], 'nothing found')}, "
                 f"recall {_ratio(row['recall'], 'nothing corrupted')}")
    return line


def _ratio(value, why_none):
    return f"n/a ({why_none})" if value is None else f"{value:.3f}"


def history_fields():
    """The history columns of the evaluation: PSNR and SSIM of each candidate, in ``CANDIDATES``
    order, then ``DETECTION_FIELDS``."""
    return tuple(f"{metric}_{name}" for name in CANDIDATES for metric in ("psnr", "ssim")) + DETECTION_FIELDS


@contextlib.contextmanager
def batch_statistics_untracked(network):
    """BatchNorm layers of ``network`` normalise with the batch's statistics (training mode, as
    they are) but leave their running statistics and batch counter as they are."""
    kinds = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    layers = [m for m in network.modules() if isinstance(m, kinds)]
    tracking = [layer.track_running_stats for layer in layers]
    try:
        for layer in layers:
            layer.track_running_stats = False  # in training mode: batch statistics, no running ones passed
        yield
    finally:
        for layer, was in zip(layers, tracking):
            layer.track_running_stats = was


class Evaluation:
    """The candidates of one run of ``problem`` (a ``Recovery``).

    :param problem: the run's problem, its saved state already loaded.
    :param dict saved: what :meth:`state_dict` returned when the run was saved, or None for a run
        that starts now (the averages then start at the first output and the initial weights).
    :param float output_weight: the weight in [0, 1) the output average keeps per iteration:
        ``average <- output_weight * average + (1 - output_weight) * phi``.
    :param float weights_weight: the same for the average of the network's weights.
    :param float fill_threshold: the |s| above which ``filled`` takes the averaged network's output.

    Call :meth:`update` after every iteration with the iteration's phi, and :meth:`outputs` at the
    iterations to report.
    """

    def __init__(self, problem, saved=None, output_weight=OUTPUT_EMA_WEIGHT, weights_weight=WEIGHT_EMA_WEIGHT,
                 fill_threshold=FILL_THRESHOLD):
        self.problem = problem
        self.output_weight, self.weights_weight = output_weight, weights_weight
        self.fill_threshold = fill_threshold
        # Copied once: the average is a module of its own, so that it runs as the network does
        # (same layout, same layers) without touching the network's parameters.
        self.averaged_network = copy.deepcopy(problem.network)
        self.averaged_network.requires_grad_(False)
        self.averaged = list(self.averaged_network.parameters())
        self.parameters = list(problem.network.parameters())
        self.output_average = None
        if saved is not None:
            self.load_state_dict(saved)

    def update(self, phi):
        """Fold one iteration in: ``phi`` is its training output, ``1 x C x H x W`` float32 on the
        device; the network's weights are those after the iteration's update. No host
        synchronisation."""
        with torch.no_grad():
            if self.output_average is None:
                self.output_average = phi.detach().clone()
            else:
                self.output_average.lerp_(phi, 1.0 - self.output_weight)
            torch._foreach_lerp_(self.averaged, self.parameters, 1.0 - self.weights_weight)

    def on_input(self, network):
        """``network`` (the problem's or its average) on the unperturbed z, the image's window of it:
        ``1 x C x H x W`` float32 on the device, in [0, 1]. In the training pass's precision."""
        with torch.no_grad(), batch_statistics_untracked(network), self.problem.network_precision():
            return self.problem.image_part(network(self.problem.z)).float()

    def outputs(self, names=CANDIDATES, impulses=None):
        """The candidates of ``names`` (and ``FINAL``) that the problem has now, ``{name: C x H x W
        float32 tensor on the device in [0, 1]}`` in ``CANDIDATES`` order (``y_minus_s`` only with a
        corruption term); only what they need is computed. ``impulses``: the problem's s now
        (``1 x C x H x W``), where the caller has it already. Call after at least one
        :meth:`update`. No host synchronisation."""
        problem, wanted = self.problem, set(names) | {FINAL}
        images = {}
        if "on_z" in wanted:
            images["on_z"] = self.on_input(problem.network)
        if "output_ema" in wanted:
            images["output_ema"] = self.output_average.clone()  # a copy: the next update changes the average in place
        images[ESTIMATE] = self.on_input(self.averaged_network)  # what ``filled`` fills with
        images["filled"] = images[ESTIMATE]
        if problem.corruption is not None:
            with torch.no_grad():
                impulses = problem.corruption() if impulses is None else impulses
                images["y_minus_s"] = (problem.y - impulses).clamp_(0.0, 1.0)
                images["filled"] = fill_impulses(problem.y, images["y_minus_s"], impulses, images[ESTIMATE],
                                                 self.fill_threshold, problem.config.remove)
        return {name: images[name][0].float() for name in CANDIDATES if name in images and name in wanted}

    def state_dict(self):
        """The averages, copied to the CPU: ``{"output_ema": 1 x C x H x W tensor or None,
        "weight_ema": [tensor per network parameter]}``."""
        copied = lambda tensor: tensor.detach().to("cpu", copy=True)  # noqa: E731 (not the live tensors)
        output = None if self.output_average is None else copied(self.output_average)
        return {"output_ema": output, "weight_ema": [copied(p) for p in self.averaged]}

    def load_state_dict(self, saved):
        with torch.no_grad():
            for average, value in zip(self.averaged, saved["weight_ema"], strict=True):
                average.copy_(value)
        output = saved["output_ema"]
        self.output_average = None if output is None else output.to(self.problem.device, copy=True)
