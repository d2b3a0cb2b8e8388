"""Opt-in int8 inference on the CPU through ONNX Runtime's static QDQ quantization.

The model is exported to ONNX (``export.py``), its convolutions are quantized (weights
int8 per channel, activations uint8 with ranges from the moving average of each
calibration image's min and max, on images the user gives, preprocessed as Darknet does;
on coco128 that was steadier across calibration sets than plain min/max, entropy or
percentile ranges); the first convolution, the convolutions that feed
the ``[yolo]`` heads and everything else, the box decoding included, stay in float.
ONNX Runtime was chosen over PyTorch's PT2E flow because PT2E left PyTorch for the
separate torchao package, while ONNX Runtime is already the ONNX extra's runtime and
runs QDQ convolutions with VNNI int8 kernels.  The result is not Darknet's
numbers: it trades exactness for speed, and ``detector map`` says how much.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import DarknetError
from ..image import load_image, network_input
from ..nn.model import CfgDescribed, Darknet
from .export import export_onnx

log = logging.getLogger(__name__)


def _calibration_batches(model: Darknet, images: Sequence[str], count: int):
    for path in list(images)[:count]:
        x = network_input(load_image(path), model.width, model.height,
                          bool(model.net.letter_box))
        yield {"images": np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)}


class Int8Darknet(CfgDescribed, nn.Module):
    """``model(x)`` of a quantized ONNX Runtime session, with the source model's
    description (``cfg``, ``width``, ``height``, ``head_shapes``...) for ``Detector``."""

    def __init__(self, model: Darknet, onnx_bytes: bytes, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(onnx_bytes, options,
                                            providers=["CPUExecutionProvider"])
        self.cfg, self.shapes = model.cfg, model.shapes
        self.width, self.height = model.width, model.height
        self.header, self.names = model.header, model.names
        self.head_shapes = model.head_shapes
        self._final_scores = model.final_scores()
        self.eval()

    def final_scores(self) -> Tensor:
        """The source model's ``final_scores()``."""
        return self._final_scores

    def forward(self, x: Tensor) -> Tensor:
        out = self.session.run(None, {"images": x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


def quantize_int8(model: Darknet, calibration: Sequence[str], count: int = 64) -> Int8Darknet:
    """An int8 version of ``model`` for the CPU, calibrated on up to ``count`` of the
    ``calibration`` image files."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
    except ImportError:
        raise DarknetError("int8 needs the onnx extra: pip install 'darknet-py[onnx]'") \
            from None
    if not calibration:
        raise DarknetError("int8 needs calibration images (an image list)")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = _calibration_batches(model, calibration, count)

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_onnx(model, fp32)
        quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=sensitive_convs(model, fp32),
                        extra_options={"CalibMovingAverage": True})
        return Int8Darknet(model, int8.read_bytes())


def sensitive_convs(model: Darknet, path: Path) -> list[str]:
    """Names of the ONNX convolutions kept in float: the first one, and those with a
    ``[yolo]`` head's channel count (anchors * (5 + classes)), which feed the heads."""
    import onnx

    graph = onnx.load(str(path)).graph
    weights = {init.name: init for init in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    heads = {len(s.mask) * (5 + s.classes) for s in model.yolo_sections}
    names = [n.name for n in convs
             if n.input[1] in weights and weights[n.input[1]].dims[0] in heads]
    return names + [convs[0].name] if convs else names
