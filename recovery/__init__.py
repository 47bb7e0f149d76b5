"""Robust image recovery by double over-parameterization: the engine.

The observation y (``1 x C x H x W``, C 1 for a grayscale image, 3 for colour) is explained as
``phi(theta; z + noise) + g*g - h*h``, fitted by plain gradient descent with learning rate ``lr``
for theta and ``lr_c`` for g and h (docs/method.md has every detail). The modules, in the order the
data goes through them:

- ``settings``: every setting (``RecoveryConfig``, ``StepOptions``, ``RunSpec``), its check, its flag;
- ``observation``: the image at its own size (or a tile of it), corrupted (``prepare_observation``);
  ``padding``: the canvas the network computes an image of any size on; ``tiling``: an image as
  overlapping tiles, and their answers blended into one;
- ``problem``: the network, the corruption term, the optimisers and one iteration (``Recovery``);
- ``state``: a run's progress and its checkpoint format (``RunState``);
- ``run``: one run from checks to outputs (``run_recovery``), with ``outputs`` (the files it
  writes), ``lock`` (one process per run) and ``stopping`` (signals);
- ``devices``, ``nvidia``, ``cuda_graph``: where and how the iteration is computed (``nvidia``:
  whether a GPU can, with this PyTorch); ``memory``, ``duration``: what a run needs, and how long
  it takes on a CPU.
"""

from .devices import describe_device, resolve_device
from .observation import Observation, prepare_observation
from .outputs import RunFiles
from .problem import Recovery
from .run import RunReport, run_recovery
from .settings import RecoveryConfig, RunSpec, StepOptions
from .state import RunState

__all__ = [
    "Observation", "Recovery", "RecoveryConfig", "RunFiles", "RunReport", "RunSpec", "RunState", "StepOptions",
    "describe_device", "prepare_observation", "resolve_device", "run_recovery",
]
