"""``darknet-py benchmark``: a model's size and cost, its latency and throughput, and its
latency next to OpenCV's DNN module measured in the same process.

The two are timed in alternating blocks, so both see the same machine state; the ratio
is ours over OpenCV's median.  BFLOPs are counted as Darknet counts them at load time
(``nn/cost.py``).
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import DarknetError
from ..nn.cost import layer_bflops, parameter_count
from ..nn.model import Darknet, module_device


def timed_calls(fn: Callable[[], object], runs: int, sync: Callable[[], None]) -> list[float]:
    """Milliseconds of each of ``runs`` calls of ``fn``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return times


@dataclass
class BenchmarkResult:
    """What ``darknet-py benchmark`` reports (times in milliseconds, per batch)."""

    cfg: str
    size: tuple[int, int]
    batch: int
    device: str
    precision: str
    compiled: bool
    parameters: int
    bflops: float  # per image, Darknet's count
    median_ms: float
    min_ms: float
    images_per_s: float
    tflops_per_s: float
    peak_memory_mb: float
    compile_s: float = 0.0
    opencv_median_ms: float | None = None
    ratio_to_opencv: float | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The printed report."""
        w, h = self.size
        out = [f"{self.cfg}: {w}x{h}, batch {self.batch}, {self.device}, {self.precision}"
               f"{', compiled' if self.compiled else ''}",
               f"parameters {self.parameters:,}, {self.bflops:.3f} BFLOPs per image",
               f"latency median {self.median_ms:.2f} ms, min {self.min_ms:.2f} ms; "
               f"{self.images_per_s:.1f} img/s; {self.tflops_per_s:.3f} TFLOP/s; "
               f"peak memory {self.peak_memory_mb:.0f} MB"]
        if self.compile_s:
            out.append(f"{'compile' if self.compiled else 'quantization'} time "
                       f"{self.compile_s:.1f} s")
        if self.opencv_median_ms is not None:
            out.append(f"OpenCV DNN median {self.opencv_median_ms:.2f} ms; ratio "
                       f"{self.ratio_to_opencv:.2f} (ours / OpenCV, alternating blocks)")
        return out + self.notes

    def to_dict(self) -> dict:
        return asdict(self)


def _opencv_net(model: Darknet, folder: Path):
    import cv2

    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        raise DarknetError(f"--vs-opencv needs OpenCV's Darknet importer, which OpenCV "
                           f"{cv2.__version__} does not have (opencv-python < 5 does)")
    cfg, weights = folder / "model.cfg", folder / "model.weights"
    cfg.write_text(model.cfg_text)
    model.save_weights(weights)
    cv2.setNumThreads(torch.get_num_threads())
    return cv2.dnn.readNetFromDarknet(str(cfg), str(weights))


def _timed_module(model: Darknet, dev: torch.device, dtype: torch.dtype, compile: bool,
                  int8_images: list[str] | None, cuda_graphs: bool) -> Callable:
    """The module ``run_benchmark`` times: the fast path, or the int8 ONNX Runtime one."""
    if int8_images:
        from .quantize import quantize_int8

        return quantize_int8(model, int8_images)
    return model.for_inference(dtype=dtype, compile=compile, device=dev,
                               cuda_graphs=cuda_graphs and dev.type == "cuda")


def run_benchmark(model: Darknet, batch: int = 1, device: str | torch.device | None = None, half: bool = False,
                  compile: bool = False, vs_opencv: bool = False, runs: int = 20,
                  blocks: int = 3, seed: int = 0,
                  int8_images: list[str] | None = None,
                  cuda_graphs: bool = True) -> BenchmarkResult:
    """Time ``model``'s fast inference module (or, with ``int8_images`` to calibrate on,
    its int8 ONNX Runtime version) on random input of the model's size.  On CUDA the
    forward is replayed as a CUDA graph unless ``cuda_graphs`` is false."""
    dev = module_device(model) if device is None else torch.device(device)
    dtype = torch.float16 if half else torch.float32
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    fast = _timed_module(model, dev, dtype, compile, int8_images, cuda_graphs)
    x = torch.rand(batch, 3, model.height, model.width, generator=torch.Generator()
                   .manual_seed(seed)).to(dev, dtype)
    with torch.no_grad():
        fast(x)
        sync()
    compile_s = time.perf_counter() - start if compile or int8_images else 0.0
    ours: list[float] = []
    theirs: list[float] = []
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        net = _opencv_net(model, Path(tmp)) if vs_opencv else None
        blob = x.float().cpu().numpy() if net is not None else None
        per_block = max(1, runs // blocks)

        def opencv() -> None:
            net.setInput(blob)
            net.forward(net.getUnconnectedOutLayersNames())

        for _ in range(blocks):
            ours += timed_calls(lambda: fast(x), per_block, sync)
            if net is not None:
                opencv()  # the first call of a block warms OpenCV's caches, as ours was
                theirs += timed_calls(opencv, per_block, lambda: None)
    med = statistics.median(ours)
    bflops = sum(layer_bflops(list(model.layers), model.shapes))
    peak = (torch.cuda.max_memory_allocated(dev) / 2 ** 20 if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result = BenchmarkResult(
        model.cfg.path, (model.width, model.height), batch, str(dev),
        "int8" if int8_images else "fp16" if half else "fp32", compile,
        parameter_count(model),
        bflops, med, min(ours), batch * 1000 / med, bflops * batch / med,
        peak, compile_s)
    if theirs:
        result.opencv_median_ms = statistics.median(theirs)
        result.ratio_to_opencv = med / result.opencv_median_ms
    if dev.type == "cuda" and cuda_graphs and not int8_images:
        result.notes.append("CUDA graph replay (the first call per shape captures it)")
    if dev.type == "cpu":
        result.notes.append("peak memory on the CPU is the process's peak resident size")
    return result
