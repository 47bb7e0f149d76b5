"""One recovery problem: the network phi, the corruption term g*g - h*h, the fixed input z, the
observation y, the two optimisers, and one gradient-descent iteration on them."""

import hashlib

import torch

from models import SkipEncoderDecoder, SparseCorruption
from utils.errors import InputError

from .cuda_graph import CudaGraphStep
from .padding import image_window, network_sides
from .settings import StepOptions

INPUT_CHANNELS = 32  # channels of the network input z
INPUT_SCALE = 0.1  # z ~ U[0, 1) * 0.1
INPUT_NOISE_STD = 1.0 / 30.0  # fresh Gaussian perturbation of z at every iteration
CORRUPTION_INIT_SCALE = 1e-5  # g, h ~ N(0, 1) * 1e-5
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


class Recovery:
    """One recovery problem's state (network, corruption, input, optimisers, noise generator).

    :param RecoveryConfig config: the problem's settings.
    :param numpy.ndarray noisy: the observation y, ``C x H x W float32`` in [0, 1]: C is 1 for a
        grayscale image, 3 for colour, and the network's output, g and h have its C channels (z
        has ``INPUT_CHANNELS`` whatever C is, as in the reference).
    :param device: where to compute (a ``torch.device`` or its name).
    :param StepOptions options: how to compute each iteration (layout, compilation, CUDA graph).

    Everything random is drawn from ``config.network_seed`` (``config.seed``, or a tile's own): the
    initialisation and z on the CPU (so they are the same on every device), the per-iteration
    input perturbations from a generator on the device, whose state is part of :meth:`state_dict`.

    The network and z have the sides of the canvas that holds the image (``padding.network_sides``),
    and the network's output is cut to the image's window (``window``, None when the canvas is the
    image) before anything else sees it: phi, g, h and y have the image's own ``H x W``.

    ``network`` is the module that owns the parameters; ``run_network`` calls it, through
    ``torch.compile`` when ``options.compile`` (the same parameters and buffers, not a copy).
    """

    def __init__(self, config, noisy, device, options=StepOptions()):
        self.config = config
        self.options = options
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        shape = (1,) + tuple(noisy.shape)
        self.window = image_window(*shape[2:])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.network_seed)
            self.network = SkipEncoderDecoder(INPUT_CHANNELS, shape[1], config.width)
            self.z = torch.rand((1, INPUT_CHANNELS) + network_sides(*shape[2:])) * INPUT_SCALE
            self.z_digest = hashlib.sha256(self.z.numpy().tobytes()).hexdigest()
            self.corruption = SparseCorruption(shape, CORRUPTION_INIT_SCALE) if config.has_corruption_term else None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # cuDNN autotuning, as in the reference
        self.network.to(self.device, memory_format=self.memory_format).train()
        # Static shapes, so that problems of other sizes in one process each get their own kernels.
        self.run_network = torch.compile(self.network, dynamic=False) if options.compile else self.network
        self.z = self.z.to(self.device, memory_format=self.memory_format)
        self.y = torch.from_numpy(noisy)[None].to(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.network_seed)
        self.criterion = torch.nn.L1Loss() if config.uses_l1 else torch.nn.MSELoss()
        optimizer = OPTIMIZERS[config.alg]
        self.optimizer = optimizer(self.network.parameters(), lr=config.lr)
        self.optimizer_c = None
        if self.corruption is not None:
            self.corruption.to(self.device)
            self.optimizer_c = optimizer(self.corruption.parameters(), lr=config.lr_c)

    @property
    def num_parameters(self):
        return sum(p.numel() for p in self.network.parameters())

    def draw_input_noise(self, out=None):
        """The next perturbation of z (std 1/30) from the problem's own generator, into ``out``
        if given (a static buffer for the CUDA-graph step)."""
        # Contiguous whatever z's layout: normal_ fills memory in order, so the layout would
        # otherwise move the same draws to other pixels.
        out = torch.empty(self.z.shape, device=self.device) if out is None else out
        return out.normal_(0.0, INPUT_NOISE_STD, generator=self.generator)

    def image_part(self, output):
        """The image's window of a network ``output`` (``1 x C x H' x W'`` on the canvas): ``1 x C x H x W``
        (a view); ``output`` itself when the canvas is the image."""
        return output if self.window is None else output[..., self.window[0], self.window[1]]

    def forward(self, noise):
        """The forward pass on ``z + noise``: returns ``(loss, phi)``, phi being the network output
        on the image's window, ``1 x C x H x W`` float32 in [0, 1] (the recovered image, without s).
        Under ``bf16`` only the network runs in bfloat16; s, the residual and the loss stay float32."""
        with self.network_precision():
            phi = self.run_network(self.z + noise)
        phi = self.image_part(phi).float()
        prediction = phi + self.corruption() if self.corruption is not None else phi
        return self.criterion(prediction, self.y), phi

    def network_precision(self):
        """The context the network computes in, for training and every other pass alike: autocast
        to bfloat16 under ``bf16``, and cuDNN's TF32 as ``precision`` says."""
        if self.device.type == "cuda":
            # Whether cuDNN may use TF32 (PyTorch's default, hence the reference's numbers) is a
            # process-wide switch: set it for every pass, so that problems of other precisions in
            # the same process (a benchmark, a sweep) cannot change this one's.
            torch.backends.cudnn.allow_tf32 = self.config.precision != "fp32"
        # No autocast weight cache: each weight is used once per pass, and CUDA-graph capture
        # forbids the cache.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16",
                              cache_enabled=False)

    def descend(self, noise):
        """One gradient-descent iteration on ``z + noise``: forward, backward, one update of theta
        and one of (g, h). The whole iteration but the noise draw: the body that the CUDA-graph
        step captures. Returns the forward pass's ``(loss, phi)``, detached."""
        self.optimizer.zero_grad()
        if self.optimizer_c is not None:
            self.optimizer_c.zero_grad()
        loss, phi = self.forward(noise)
        loss.backward()
        self.optimizer.step()
        if self.optimizer_c is not None:
            self.optimizer_c.step()
        return loss.detach(), phi.detach()

    def step(self):
        """One iteration, eagerly: a fresh perturbation, then :meth:`descend`. Returns its
        ``(loss, phi)`` as tensors on the device (no host synchronisation)."""
        return self.descend(self.draw_input_noise())

    def stepper(self):
        """A callable doing one iteration per call as ``options.step`` asks: :meth:`step` itself,
        or the same iteration replayed as a CUDA graph. Make it after loading any saved state: the
        graph captures the tensors as they are."""
        return CudaGraphStep(self) if self.options.step == "graph" else self.step

    def parameters_finite(self):
        """Whether every learned value (the network's parameters, g and h) is finite: a 0-dim bool
        tensor on the device, without host synchronisation. A step can blow up the weights while
        BatchNorm keeps the outputs made from them, or from their average, finite."""
        learned = list(self.network.parameters()) + ([] if self.corruption is None else list(self.corruption.parameters()))
        return torch.stack([torch.isfinite(value).all() for value in learned]).all()

    def impulses(self):
        """The estimated sparse corruption s = g*g - h*h, ``C x H x W`` float32 numpy, or None."""
        if self.corruption is None:
            return None
        with torch.no_grad():
            return self.corruption()[0].float().cpu().numpy()

    def state_dict(self):
        return {
            "network": self.network.state_dict(),
            "corruption": self.corruption.state_dict() if self.corruption is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "optimizer_c": self.optimizer_c.state_dict() if self.optimizer_c is not None else None,
            # Not z (1 x 32 x H x W, most of a checkpoint, constant): the seed draws it again, and
            # its digest proves it is the same.
            "z_digest": self.z_digest,
            "y": self.y.cpu(),
            "generator": self.generator.get_state(),
            "generator_device": self.device.type,
        }

    def load_state_dict(self, state):
        self.network.load_state_dict(state["network"])
        if self.corruption is not None:
            self.corruption.load_state_dict(state["corruption"])
            self.optimizer_c.load_state_dict(state["optimizer_c"])
        self.optimizer.load_state_dict(state["optimizer"])
        # In place, so that a captured CUDA graph keeps seeing the same tensors.
        if "z" in state:  # checkpoint formats 1 and 2 keep z itself
            self.z.copy_(state["z"])
        elif state["z_digest"] != self.z_digest:
            raise InputError(f"the input z that `seed` {self.config.seed} draws here is not the checkpoint's (another "
                             f"PyTorch version?): resume the run where it was made")
        self.y.copy_(state["y"])
        self.generator.set_state(state["generator"])
