"""Video reading with OpenCV, validated up front so bad input fails with a clear message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of an opened video: size in pixels, ``fps`` in frames per second,
    ``num_frames`` as reported by the container (may be an estimate)."""

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int


class VideoReader:
    """Iterate over the frames of a video file as `(H, W, 3)` BGR uint8 arrays.

    Args:
        path: a video file OpenCV can decode.
        max_frames: stop after this many frames (``None``: all).

    Raises:
        InputError: if the file is missing, is not a video OpenCV can decode, or holds
            no frame.
    """

    def __init__(self, path: str | Path, max_frames: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: video file not found")
        # FFmpeg would print its own complaint about a bad file next to our error; keep
        # it quiet unless the user asked for FFmpeg logs.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        capture = cv2.VideoCapture(str(self.path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok or first is None:
            capture.release()
            raise InputError(
                f"{self.path}: not a readable video (OpenCV could not decode a first frame; "
                f"the file is empty, not a video, or its codec is unsupported)"
            )
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = VideoInfo(
            path=self.path,
            width=first.shape[1],
            height=first.shape[0],
            fps=fps if 0 < fps < 1000 else 25.0,
            num_frames=min(count, max_frames) if max_frames else count,
        )
        self._capture = capture
        self._first: np.ndarray | None = first
        self.max_frames = max_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield frames in order; each at most once (the reader is not rewindable)."""
        produced = 0
        try:
            while self.max_frames is None or produced < self.max_frames:
                if self._first is not None:
                    frame, self._first = self._first, None
                else:
                    ok, frame = self._capture.read()
                    if not ok:
                        break
                produced += 1
                yield frame
        finally:
            self._capture.release()

    def __len__(self) -> int:
        return self.info.num_frames


VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


def sequence_frames(
    seq_dir: str | Path, max_frames: int | None = None, step: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Frames of a MOTChallenge-layout sequence folder.

    Frames come from the ``imDir`` folder of ``seqinfo.ini`` (images named by frame
    number) or, when that folder is absent, from the one video file of the sequence
    folder (frame n of the video = frame n of the ground truth).

    Args:
        seq_dir: the sequence folder (holds ``seqinfo.ini``).
        max_frames: only the first ``max_frames`` frames (``None``: all).
        step: yield every ``step``-th frame, starting with frame 1.

    Yields:
        ``(1-based frame id, (H, W, 3) BGR uint8 frame)``.

    Raises:
        InputError: no image folder and not exactly one video, or an unreadable image.
    """
    from .evaluation.mot import read_seqinfo

    seq_dir = Path(seq_dir)
    info = read_seqinfo(seq_dir)
    image_dir = seq_dir / info.get("imDir", "img1")
    if image_dir.is_dir():
        paths = sorted(image_dir.glob(f"*{info.get('imExt', '.jpg')}"))[:max_frames]
        for path in paths[::step]:
            frame = cv2.imread(str(path))
            if frame is None:
                raise InputError(f"{path}: image missing or unreadable")
            yield int(path.stem), frame
        return
    videos = sorted(p for p in seq_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if len(videos) != 1:
        raise InputError(
            f"{seq_dir}: expected an image folder {image_dir.name}/ or exactly one video file, "
            f"found {len(videos)} video(s)"
        )
    for frame_id, frame in enumerate(VideoReader(videos[0], max_frames=max_frames), start=1):
        if (frame_id - 1) % step == 0:
            yield frame_id, frame
