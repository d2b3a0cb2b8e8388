"""``[net]``: input size, optimizer, schedule and augmentation settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from .base import Section, choices, register_section, unimplemented

log = logging.getLogger(__name__)


MAX_SIZE = 16384  # network input width or height


@register_section
@dataclass
class NetSection(Section):
    """``[net]``: input size, optimizer, schedule and augmentation settings."""

    kind: ClassVar[str] = "net"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("width", "height", "channels")
    aliases: ClassVar[tuple[str, ...]] = ("network",)
    DERIVED: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "inputs": lambda s: s.width * s.height * s.channels,
        "sgdr_cycle": lambda s: s.max_batches,
        "sequential_subdivisions": lambda s: s.subdivisions,
        "max_crop": lambda s: s.width * 2,
        "min_crop": lambda s: s.width,
    }

    batch: int = 1
    subdivisions: int = 1
    width: int = 0
    height: int = 0
    channels: int = 0
    inputs: int | None = None
    max_batches: int = 0
    learning_rate: float = 0.001
    learning_rate_min: float = 0.00001
    momentum: float = 0.9
    decay: float = 0.0001
    burn_in: int = 0
    power: float = 4.0
    policy: str = field(default="constant", metadata=choices(
        "constant", "steps", "step", "poly", "exp", "sigmoid", "sgdr", "random"))
    steps: list[int] | None = None
    scales: list[float] | None = None
    seq_scales: list[float] | None = field(default=None, metadata=unimplemented("training"))
    step: int = 1
    scale: float = 1.0
    gamma: float = 1.0
    sgdr_cycle: int | None = None
    sgdr_mult: int = 2
    time_steps: int = field(default=1, metadata=unimplemented("recurrent layers"))
    track: int = field(default=0, metadata=unimplemented("training"))
    augment_speed: int = field(default=2, metadata=unimplemented("training"))
    sequential_subdivisions: int | None = field(default=None, metadata=unimplemented("training"))
    try_fix_nan: int = field(default=0, metadata=unimplemented("training"))
    weights_reject_freq: int = field(default=0, metadata=unimplemented("training"))
    equidistant_point: int = field(default=0, metadata=unimplemented("training"))
    badlabels_rejection_percentage: float = field(default=0.0, metadata=unimplemented("training"))
    num_sigmas_reject_badlabels: float = field(default=0.0, metadata=unimplemented("training"))
    ema_alpha: float = 0.0
    use_cuda_graph: int = field(default=0, metadata=unimplemented("Darknet's CUDA graphs"))
    loss_scale: float = field(default=1.0, metadata=unimplemented("training"))
    dynamic_minibatch: int = field(default=0, metadata=unimplemented("training"))
    optimized_memory: int = field(default=0, metadata=unimplemented("Darknet's GPU memory use"))
    workspace_size_limit_MB: float = field(default=1024.0,
                                           metadata=unimplemented("cuDNN workspace"))
    adam: int = field(default=0, metadata=unimplemented("training with Adam; darknet-py uses SGD"))
    B1: float = field(default=0.9, metadata=unimplemented("training (Adam)"))
    B2: float = field(default=0.999, metadata=unimplemented("training (Adam)"))
    eps: float = field(default=0.000001, metadata=unimplemented("training (Adam)"))
    max_crop: int | None = None
    min_crop: int | None = None
    flip: int = 1
    blur: int = 0
    gaussian_noise: int = 0
    mixup: int = 0
    cutmix: int = field(default=0, metadata=unimplemented("training augmentation"))
    mosaic: int = 0
    letter_box: int = 0
    mosaic_bound: int = 0
    contrastive: int = field(default=0, metadata=unimplemented("training"))
    contrastive_jit_flip: int = field(default=0, metadata=unimplemented("training"))
    contrastive_color: int = field(default=0, metadata=unimplemented("training"))
    unsupervised: int = field(default=0, metadata=unimplemented("training"))
    label_smooth_eps: float = 0.0  # classifier training (fill_truth_smooth)
    resize_step: float = 32.0
    attention: int = field(default=0, metadata=unimplemented("training"))
    adversarial_lr: float = field(default=0.0, metadata=unimplemented("training"))
    max_chart_loss: float = field(default=20.0, metadata=unimplemented("the training chart"))
    angle: float = 0.0  # angle and aspect: classifier augmentation (random_augment_image)
    aspect: float = 1.0
    saturation: float = 1.0
    exposure: float = 1.0
    hue: float = 0.0
    show_receptive_field: float = field(default=0.0, metadata=unimplemented("a display window"))

    def finalize(self) -> None:
        self.fill_derived()
        for key in ("batch", "subdivisions"):
            if getattr(self, key) < 1:
                raise self.error(f"{key}={getattr(self, key)} must be at least 1", key)
        if self.batch % self.subdivisions:
            log.warning("%s:%d: [net] batch=%d is not a multiple of subdivisions=%d; "
                        "mini-batch is %d as in Darknet", self.path, self.line, self.batch,
                        self.subdivisions, self.batch // self.subdivisions)
        if not (self.width > 0 and self.height > 0 and self.channels > 0):
            raise self.error("width, height and channels must be set and positive "
                             f"(got width={self.width} height={self.height} "
                             f"channels={self.channels})")
        self.check_range("width", 1, MAX_SIZE)
        self.check_range("height", 1, MAX_SIZE)
        self.check_range("channels", 1, 1024)
        if self.policy == "steps":
            if not self.steps or not self.scales:
                raise self.error("policy=steps needs both steps= and scales=", "policy")
            if len(self.scales) != len(self.steps):
                raise self.error(f"steps has {len(self.steps)} values but scales has "
                                 f"{len(self.scales)}", "scales")

    @property
    def mini_batch(self) -> int:
        """Images per forward pass: ``batch // subdivisions`` (Darknet's ``net.batch``)."""
        return max(1, self.batch // self.subdivisions)
