"""The recovery iteration captured as one CUDA graph: no per-iteration launch overhead.

The reference spends ~4.7 ms of CPU time per iteration launching kernels (docs/method.md).
Capturing the whole iteration (forward, backward, both SGD updates) once and replaying it removes
that. The computation is ``Recovery.descend`` itself, not a copy of it; only the input perturbation is
drawn outside the graph, from the problem's own generator into a static buffer, so the noise
stream, and with it seeding and resume, are exactly those of the eager step.
"""

import torch

WARMUP_ITERATIONS = 3  # eager iterations on a side stream before capture (autotuning, lazy init)


def graph_step_unsupported(device, config):
    """Why the graph step cannot run ``config`` on ``device`` (a sentence), or None if it can."""
    if device.type != "cuda":
        return f"needs a CUDA device, not {device}"
    if config.alg != "sgd":
        return "supports `alg` sgd only"  # Adam's state updates are not capturable as built
    return None


class CudaGraphStep:
    """Callable doing one iteration of ``recovery`` by replaying a captured CUDA graph.

    Returns ``(loss, phi)`` like ``Recovery.step``; they are static tensors, overwritten by the
    next call, so read them (``.item()``, ``.cpu()``) before calling again.

    Capturing needs a few real iterations first; they run on a snapshot that is restored before
    capture, so the problem's state and trajectory are as if they had never happened.
    """

    def __init__(self, recovery):
        reason = graph_step_unsupported(recovery.device, recovery.config)
        if reason is not None:
            raise ValueError(f"the CUDA-graph step {reason}")
        self.recovery = recovery
        self.noise = torch.empty(recovery.z.shape, device=recovery.device)  # contiguous, as eager
        modules = [m for m in (recovery.network, recovery.corruption) if m is not None]
        snapshot = [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]

        # Streams and capture belong to the current device: make it the run's (cuda:1 in a sweep).
        with torch.cuda.device(recovery.device):
            side = torch.cuda.Stream(device=recovery.device)
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.noise.zero_()  # the warm-up's values are thrown away; the problem's generator is untouched
                for _ in range(WARMUP_ITERATIONS):
                    recovery.descend(self.noise)
            torch.cuda.current_stream().wait_stream(side)
            with torch.no_grad():
                for module, state in zip(modules, snapshot):
                    for key, value in module.state_dict().items():
                        value.copy_(state[key])

            self.graph = torch.cuda.CUDAGraph()
            # A capture stream of the run's device: torch.cuda.graph's default is one stream for
            # the whole process, made on whichever device captured first, which cannot capture on
            # another (the second GPU of a process running runs on two).
            capture = torch.cuda.Stream(device=recovery.device)
            # A compiled network must not compile again while capturing (compiling synchronises
            # with the GPU, which breaks the capture): fail with torch.compile's own message instead.
            with torch.compiler.set_stance("fail_on_recompile"), torch.cuda.graph(self.graph, stream=capture):
                self.loss, self.phi = recovery.descend(self.noise)

    def __call__(self):
        with torch.cuda.device(self.recovery.device):
            self.recovery.draw_input_noise(out=self.noise)
            self.graph.replay()
        return self.loss, self.phi
