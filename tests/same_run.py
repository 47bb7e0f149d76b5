"""Two runs of one trajectory compared (the tests of resume, signals, kills and sweeps): the same
problem state bit for bit, and the same history but for what differs by design."""

import numpy as np
import torch

from recovery.evaluation import CANDIDATES, FINAL

# Logged at a session's last iteration besides the final answer's: a run done in two sessions also
# has them where its first session ended.
SESSION_END_COLUMNS = {f"{metric}_{name}" for name in CANDIDATES if name != FINAL for metric in ("psnr", "ssim")}


def comparable_history(rows):
    """The history rows without their wall times, and without the columns only a session's end logs
    (kept on the last row)."""
    return [{key: value for key, value in row.items()
             if key != "seconds" and (key not in SESSION_END_COLUMNS or index == len(rows) - 1)}
            for index, row in enumerate(rows)]


def assert_same_problem_state(a, b):
    """Two RunStates at the same point of the same trajectory, bit for bit (but the wall times)."""
    for part in ["network", "corruption"]:
        for key, value in a.problem[part].items():
            assert torch.equal(value, b.problem[part][key]), key
    assert torch.equal(a.problem["generator"], b.problem["generator"])
    assert np.array_equal(a.last, b.last) and np.array_equal(a.best, b.best)
    assert (a.refined is None) == (b.refined is None) and (a.refined is None or np.array_equal(a.refined, b.refined))
    assert comparable_history(a.history) == comparable_history(b.history)
