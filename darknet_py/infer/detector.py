"""Detection as ``darknet detector test`` does it: preprocess, forward, decode, NMS."""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Sized

import numpy as np
import torch

from ..errors import ImageError
from ..image import load_image, load_rgb8, network_input
from ..image.decode import DEFAULT_DECODER, to_float
from ..nn.model import Darknet, module_device
from ..ops.nms import nms, sort_like_darknet
from .detections import Detections, candidates, darknet_order

log = logging.getLogger(__name__)


@dataclass
class DetectorConfig:
    """Thresholds and preprocessing of ``detector test`` (Darknet's defaults)."""

    thresh: float = 0.25
    nms: float = 0.45
    letter_box: bool | None = None  # None: the cfg's [net] letter_box
    nms_kind: str | None = None  # None: the last [yolo] layer's nms_kind
    beta_nms: float | None = None


def inference_model(model: Darknet, device: torch.device, dtype: torch.dtype) -> Darknet:
    """``model`` itself if it is in eval mode on ``device`` in ``dtype``, else an eval-mode
    copy there: the caller's model is never switched, moved or converted."""
    tensors = [*model.parameters(), *model.buffers()]
    ready = not model.training and all(
        t.device == device and (t.dtype == dtype or not t.is_floating_point()) for t in tensors)
    if ready:
        return model
    return copy.deepcopy(model).eval().to(device=device, dtype=dtype)


class Detector:
    """Runs a ``Darknet`` model on images and returns ``Detections`` per image.

    ``images`` may be paths or RGB float32 arrays (H x W x 3, values in [0, 1]).
    ``half`` runs the network in float16 (meant for CUDA; the CPU runs it too, slowly).

    ``device`` defaults to the model's own device.
    The model handed in is never changed: if it is already in eval mode on ``device``
    in the precision asked for, it is used as it is (later changes to its weights are
    seen); otherwise the detector runs on a copy made once here (``self.model``).
    ``names`` (default: the model's, from a checkpoint) name the classes in ``results``.
    ``decoder`` reads image files as a Darknet build does: ``opencv`` (the default, Darknet
    built with OpenCV) or ``stb`` (Darknet built without it).
    ``fast`` runs a ``for_inference`` copy instead (batch norm folded as Darknet's
    ``fuse_conv_batchnorm`` does before detecting, channels_last, CUDA graphs on a GPU).
    """

    def __init__(self, model: Darknet, config: DetectorConfig | None = None,
                 device: str | torch.device | None = None, half: bool = False,
                 resize_on_device: bool = False, fast: bool = False,
                 names: Sequence[str] | None = None, decoder: str = DEFAULT_DECODER):
        self.config = config or DetectorConfig()
        self.decoder = decoder
        self.names = names if names is not None else getattr(model, "names", None)
        self.device = module_device(model) if device is None else torch.device(device)
        self.half = half
        self.resize_on_device = resize_on_device
        dtype = torch.float16 if half else torch.float32
        self.fast = fast and isinstance(model, Darknet)
        self.model = (model.for_inference(dtype, device=self.device,
                                          cuda_graphs=self.device.type == "cuda")
                      if self.fast else inference_model(model, self.device, dtype))
        if not model.head_sections:
            model.require_head("detect")
        last = model.head_sections[-1]
        self.nms_kind = self.config.nms_kind or getattr(last, "nms_kind", "default")
        self.beta_nms = (getattr(last, "beta_nms", 0.6) if self.config.beta_nms is None
                         else self.config.beta_nms)
        self.letter_box = bool(model.net.letter_box if self.config.letter_box is None
                               else self.config.letter_box)
        self.net_size = (model.width, model.height)
        self._order = darknet_order(model.head_shapes)
        final = model.final_scores()
        self._final = final[self._order] if bool(final.any()) else None

    def preprocess(self, image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """One RGB image (array, or tensor on any device) -> network input (H x W x 3),
        stretched or letterboxed."""
        return network_input(image, *self.net_size, self.letter_box)

    @torch.no_grad()
    def forward(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Network input (N x H x W x 3 float32) -> decoded predictions (N x B x 5+C)."""
        batch = torch.as_tensor(batch)
        if self.device.type == "cuda" and not batch.is_cuda:
            batch = batch.pin_memory()  # an asynchronous copy from page-locked memory
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        if not self.fast:  # the fast path takes this NHWC view as channels_last as it is
            x = x.contiguous()
        if self.half:
            x = x.half()
        return self.model(x).float()

    def postprocess(self, pred: torch.Tensor, image_size: tuple[int, int]) -> Detections:
        """One image's predictions -> thresholded, NMS-ed detections (Darknet's order)."""
        pred = pred[self._order.to(pred.device)]
        final = self._final.to(pred.device) if self._final is not None else None
        boxes, obj, probs = candidates(pred, self.config.thresh, self.net_size, image_size,
                                       self.letter_box, final)
        order = sort_like_darknet(probs)
        kept = nms(boxes, probs, self.config.nms, self.nms_kind, self.beta_nms)
        return Detections(boxes[order].cpu(), obj[order].cpu(), kept[order].cpu(), image_size)

    def __call__(self, images: Sequence[str | Path | np.ndarray],
                 bgr: bool = False) -> list[Detections]:
        """Detections of each image: a path, or an H x W x 3 array, RGB float in [0, 1] or
        uint8 (scaled by 1/255); ``bgr=True`` for arrays in ``cv2.imread``'s BGR order."""
        arrays = [load_image(im, self.decoder) if isinstance(im, (str, Path))
                  else as_network_rgb(im, k, bgr)
                  for k, im in enumerate(images)]
        if not arrays:
            return []
        batch = np.stack([self.preprocess(a) for a in arrays])
        pred = self.forward(batch)
        return [self.postprocess(p, (a.shape[1], a.shape[0])) for p, a in zip(pred, arrays)]

    def results(self, images: Sequence[str | Path | np.ndarray], bgr: bool = False) -> list:
        """Plain per-image results (``Results``: pixel boxes x1 y1 x2 y2, scores, class ids
        and names above the detector's threshold) for the same inputs as calling it."""
        return [d.results(self.config.thresh, self.names) for d in self(images, bgr)]

    def _load(self, path: str | Path) -> tuple[np.ndarray, tuple[int, int]]:
        """Decoded (and, unless resized on the device, preprocessed) image and its size."""
        if self.resize_on_device:
            image = load_rgb8(path, self.decoder)
            return image, (image.shape[1], image.shape[0])
        image = load_image(path, self.decoder)
        return self.preprocess(image), (image.shape[1], image.shape[0])

    def _to_input(self, loaded: list[np.ndarray]) -> np.ndarray | torch.Tensor:
        """A batch of network inputs from what ``_load`` returned: with ``resize_on_device``
        the uint8 images go to the device and are scaled and resized there."""
        if not self.resize_on_device:
            return np.stack(loaded)
        return torch.stack([self.preprocess(torch.from_numpy(im).to(self.device).float() / 255)
                            for im in loaded])

    def detect_paths(self, paths: Iterable[str | Path], batch_size: int = 8,
                     workers: int = 4, progress: str | None = None
                     ) -> Iterator[tuple[str | Path, Detections]]:
        """Detect on many image files in order, decoding the next images in background
        threads while the network runs; yields ``(path, detections)``.  ``progress``
        labels a progress bar (on stderr) when given."""
        results = self._detect_paths(paths, batch_size, workers)
        if progress is None:
            return results
        from tqdm import tqdm

        total = len(paths) if isinstance(paths, Sized) else None
        return tqdm(results, total=total, desc=progress, unit="img", leave=False)

    def _detect_paths(self, paths: Iterable[str | Path], batch_size: int,
                      workers: int) -> Iterator[tuple[str | Path, Detections]]:
        pending: deque = deque()
        todo = iter(paths)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            while True:
                while len(pending) < 2 * batch_size:  # bounded read-ahead
                    path = next(todo, None)
                    if path is None:
                        break
                    pending.append((path, pool.submit(self._load, path)))
                if not pending:
                    return
                chunk = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
                loaded = [(path, got) for path, future in chunk
                          if (got := _result_or_skip(path, future)) is not None]
                if not loaded:
                    continue
                pred = self.forward(self._to_input([x for _, (x, _) in loaded]))
                for (path, (_, size)), p in zip(loaded, pred):
                    yield path, self.postprocess(p, size)


def as_network_rgb(image: np.ndarray, index: int = 0, bgr: bool = False) -> np.ndarray:
    """An image array as the network reads it (RGB float32 in [0, 1], H x W x 3), or an
    ``ImageError`` naming what is wrong with it."""
    where = f"image {index}"
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ImageError(f"{where}: expected an H x W x 3 array, got {shape}")
    if image.dtype == np.uint8:
        image = to_float(image)  # as Darknet divides
    elif not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"{where}: dtype {image.dtype}; pass uint8 (0-255) or float (0-1)")
    elif image.size and (not np.isfinite(image).all() or image.min() < 0 or image.max() > 1):
        raise ImageError(f"{where}: float values outside [0, 1] (max {np.nanmax(image):g}); "
                         f"pass uint8 arrays as they are, or divide by 255")
    image = np.ascontiguousarray(image[..., ::-1] if bgr else image, dtype=np.float32)
    return image


def _result_or_skip(path: str | Path, future):
    """A loaded image, or ``None`` after logging why the file is skipped."""
    try:
        return future.result()
    except ImageError as err:
        log.error("%s; skipped", err, extra={"skipped": True})
        return None


@dataclass
class ImageResult:
    """One image of ``detect_images``: its path, RGB pixels, detections and the time the
    detector took (milliseconds, as Darknet's "Predicted in")."""

    path: str
    image: np.ndarray
    detections: Detections
    milliseconds: float


def detect_images(detector: Detector, paths: Iterable[str]) -> Iterator[ImageResult]:
    """Detect on each image file in turn, as ``detector test`` does (one at a time); a
    file that cannot be read is logged and skipped."""
    for path in paths:
        try:
            image = load_image(path, detector.decoder)
        except ImageError as err:
            log.error("%s; skipped", err, extra={"skipped": True})
            continue
        start = time.perf_counter()
        dets = detector([image])[0]
        yield ImageResult(path, image, dets, (time.perf_counter() - start) * 1000)
