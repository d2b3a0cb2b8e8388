"""Detection on video, as ``darknet detector demo`` runs it: frames read, detected, drawn
and written in a pipeline.

``detect_video`` reads frames in a background thread (a bounded queue ahead of the
network) and yields a ``VideoFrame`` per frame, in order; ``VideoWriter`` draws and
encodes frames in another thread, so decoding and drawing overlap with inference.  Each
frame goes through the same ``Detector`` call as an image (Darknet's resize, thresholds
and NMS), so frame k's detections are what ``detector test`` finds on that frame.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..errors import ImageError
from .detections import Detections
from .detector import Detector, as_network_rgb
from .report import draw_detections

_END = object()
FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "XVID", ".mov": "mp4v"}


@dataclass
class VideoFrame:
    """One frame: its index (from 0), BGR uint8 pixels, RGB float pixels, detections and
    the milliseconds the detector took."""

    index: int
    bgr: np.ndarray
    rgb: np.ndarray
    detections: Detections
    milliseconds: float


@dataclass
class VideoSource:
    """An opened video file or camera: the capture, its frame rate and frame size."""

    capture: cv2.VideoCapture
    fps: float
    size: tuple[int, int]
    name: str

    @classmethod
    def open(cls, source: str | Path | int) -> VideoSource:
        name = f"camera {source}" if isinstance(source, int) else str(source)
        if not isinstance(source, int) and not Path(source).is_file():
            raise ImageError(f"{name}: video file not found")
        capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
        if not capture.isOpened():
            raise ImageError(f"{name}: cannot open the video (unknown format, or no camera)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        return cls(capture, fps if fps and fps > 0 else 25.0, size, name)

    def frames(self) -> Iterator[np.ndarray]:
        """BGR uint8 frames until the stream ends."""
        try:
            while True:
                ok, frame = self.capture.read()
                if not ok:
                    return
                yield frame
        finally:
            self.capture.release()


def _read_ahead(frames: Iterator[np.ndarray], out: queue.Queue, stop: threading.Event) -> None:
    try:
        for frame in frames:
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    finally:
        out.put(_END)


def detect_video(detector: Detector, source: VideoSource,
                 prefetch: int = 4) -> Iterator[VideoFrame]:
    """Detections of every frame of ``source``, in order; frames are decoded ``prefetch``
    ahead in a background thread."""
    frames: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()
    reader = threading.Thread(target=_read_ahead, args=(source.frames(), frames, stop),
                              daemon=True)
    reader.start()
    try:
        index = 0
        while (bgr := frames.get()) is not _END:
            rgb = as_network_rgb(bgr, index, bgr=True)
            start = time.perf_counter()
            dets = detector([rgb])[0]
            yield VideoFrame(index, bgr, rgb, dets, (time.perf_counter() - start) * 1000)
            index += 1
    finally:
        stop.set()
        reader.join(timeout=5)


class VideoWriter:
    """Draws detections on frames and writes them to a video file in a background thread
    (same frame rate and size as the input).  Use as a context manager."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int],
                 names: Sequence[str], thresh: float):
        self.path = Path(path)
        fourcc = cv2.VideoWriter_fourcc(*FOURCC.get(self.path.suffix.lower(), "mp4v"))
        self.writer = cv2.VideoWriter(str(self.path), fourcc, fps, size)
        if not self.writer.isOpened():
            raise ImageError(f"{self.path}: cannot write a video here (folder or codec)")
        self.names, self.thresh = names, thresh
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (frame := self.queue.get()) is not _END:
                self.writer.write(draw_detections(frame.rgb, frame.detections, self.names,
                                                  self.thresh))
        except BaseException as err:  # reported by close()
            self.error = err
            while self.queue.get() is not _END:
                pass

    def write(self, frame: VideoFrame) -> None:
        self.queue.put(frame)

    def close(self) -> None:
        self.queue.put(_END)
        self.thread.join()
        self.writer.release()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
