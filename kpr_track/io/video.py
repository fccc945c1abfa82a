"""Video reading with OpenCV, validated up front so bad input fails with a clear message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of an opened video: size in pixels, ``fps`` in frames per second,
    ``num_frames`` as reported by the container (may be an estimate)."""

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int


# Reads in a row that may fail before the reader gives up on the rest of the video.
MAX_CONSECUTIVE_FAILURES = 25


@dataclass
class DecodeReport:
    """How the frames of a video decoded, recorded in ``summary.json`` as ``"decode"``.

    Attributes:
        declared_frames: frames the container declares (0: unknown), at most ``max_frames``.
        decoded_frames: frames decoded and yielded.
        failed_frames: 1-based numbers of the frames that failed to decode before the
            end of the video and were skipped.
        unread_frames: declared frames never reached because decoding stopped early
            (a truncated or corrupt file); set when the reader reaches its end.
    """

    declared_frames: int
    decoded_frames: int = 0
    failed_frames: list[int] = field(default_factory=list)
    unread_frames: int = 0

    def warning(self, path: Path) -> str | None:
        """One line describing the decoding problems, or None when there were none."""
        problems = []
        if self.failed_frames:
            shown = ", ".join(map(str, self.failed_frames[:5]))
            more = ", ..." if len(self.failed_frames) > 5 else ""
            problems.append(
                f"{len(self.failed_frames)} frame(s) failed to decode and were skipped "
                f"(frames {shown}{more})"
            )
        if self.unread_frames:
            problems.append(
                f"the container declares {self.declared_frames} frames but decoding stopped "
                f"after frame {self.declared_frames - self.unread_frames} (truncated or "
                f"corrupt file?)"
            )
        return f"{path}: {'; '.join(problems)}" if problems else None


class VideoReader:
    """Iterate over the frames of a video file as `(H, W, 3)` BGR uint8 arrays.

    A frame that fails to decode is skipped and counted (up to
    :data:`MAX_CONSECUTIVE_FAILURES` in a row), so :attr:`frame_id` keeps the video's
    own frame numbers; :attr:`decode` reports failed frames and frames the container
    declares that were never reached. OpenCV itself skips some undecodable packets
    without saying so; those show only as unread frames at the end.

    Args:
        path: a video file OpenCV can decode.
        max_frames: stop after this many frames (``None``: all).

    Attributes:
        frame_id: 1-based number of the frame last yielded (0 before the first).
        decode: the :class:`DecodeReport` so far.

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
        self.frame_id = 0
        self.decode = DecodeReport(declared_frames=self.info.num_frames)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield frames in order; each at most once (the reader is not rewindable)."""
        try:
            while self.max_frames is None or self.frame_id < self.max_frames:
                if self._first is not None:
                    frame, self._first, self.frame_id = self._first, None, 1
                else:
                    frame = self._read()
                    if frame is None:
                        break
                self.decode.decoded_frames += 1
                yield frame
            self.decode.unread_frames = max(self.info.num_frames - self.frame_id, 0)
        finally:
            self._capture.release()

    def _read(self) -> np.ndarray | None:
        """The next frame that decodes, skipping and recording failed ones; None at the
        end (a failure at or past the declared end, or too many in a row)."""
        failed: list[int] = []
        while True:
            ok, frame = self._capture.read()
            if ok:
                break
            failed.append(self.frame_id + len(failed) + 1)
            past_end = self.frame_id + len(failed) >= self.info.num_frames
            if past_end or len(failed) >= MAX_CONSECUTIVE_FAILURES:
                return None
        self.decode.failed_frames += failed
        self.frame_id += len(failed)
        if self.max_frames is not None and self.frame_id >= self.max_frames:
            return None
        self.frame_id += 1
        return frame

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
    from ..evaluation.mot import read_seqinfo

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
    reader = VideoReader(videos[0], max_frames=max_frames)
    for frame in reader:
        if (reader.frame_id - 1) % step == 0:
            yield reader.frame_id, frame
