"""Recurrent sections for image inputs: ``[crnn]`` (``parse_crnn``) and ``[conv_lstm]``
(``parse_conv_lstm``), with Darknet's defaults.  Text models (``[rnn]``, ``[gru]``,
``[lstm]``) are refused by the parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import ACTIVATIONS, LayerSection, choices, register_section, unimplemented


@dataclass
class _RecurrentConvSection(LayerSection):
    """The convolution keys ``[crnn]`` and ``[conv_lstm]`` share, and their checks: the
    state convolutions read the output as an input, so stride and dilation stay 1."""

    POSITIVE: ClassVar[tuple[str, ...]] = ("size", "output", "groups")

    size: int = 3
    stride: int = 1
    dilation: int = 1
    pad: int = 0
    padding: int = 0
    output: int = 1
    groups: int = 1
    activation: str = field(default="logistic", metadata=choices(*ACTIVATIONS))
    batch_normalize: int = 0
    xnor: int = 0

    def unsupported(self) -> list[tuple[str, bool]]:
        return [("stride", self.stride != 1), ("dilation", self.dilation != 1),
                ("xnor", bool(self.xnor))]

    def finalize(self) -> None:
        if self.pad:
            self.padding = self.size // 2
        for key in self.POSITIVE:
            self.check_range(key, 1, 65536)
        for key, bad in self.unsupported():
            if bad:
                raise self.error(f"{key}={getattr(self, key)} is not supported by darknet-py "
                                 f"in [{self.kind}] (Darknet's CPU forward has no such path)",
                                 key)


@register_section
@dataclass
class CrnnSection(_RecurrentConvSection):
    """``[crnn]``: a convolutional recurrent layer: three convolutions (input, self,
    output) around a ``hidden``-channel state."""

    kind: ClassVar[str] = "crnn"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("size", "stride", "padding", "output", "hidden",
                                           "groups", "batch_normalize", "activation",
                                           "shortcut")
    POSITIVE: ClassVar[tuple[str, ...]] = ("size", "output", "hidden", "groups")

    hidden: int = 1
    shortcut: int = 0


@register_section
@dataclass
class ConvLstmSection(_RecurrentConvSection):
    """``[conv_lstm]``: a convolutional LSTM: per gate a convolution of the input (``u``)
    and of the last output (``w``), with ``peephole`` also of the cell (``v``)."""

    kind: ClassVar[str] = "conv_lstm"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("size", "stride", "padding", "output", "groups",
                                           "batch_normalize", "activation", "peephole")

    activation: str = field(default="linear", metadata=choices(*ACTIVATIONS))
    peephole: int = 0
    bottleneck: int = 0
    state_constrain: int | None = None  # Darknet's default: time_steps * 32
    shortcut: int = field(default=0, metadata=unimplemented("Darknet's GPU forward only"))
    lstm_activation: str = field(default="tanh", metadata=unimplemented(
        "Darknet's GPU forward only; its CPU forward uses tanh"))
    time_normalizer: float = field(default=1.0, metadata=unimplemented("training"))

    def unsupported(self) -> list[tuple[str, bool]]:
        return super().unsupported() + [("bottleneck", bool(self.bottleneck))]

    def finalize(self) -> None:
        super().finalize()
        if self.state_constrain is None:
            self.state_constrain = 32  # time_steps * 32, with darknet-py's one time step
