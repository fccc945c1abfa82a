"""Result writers: MOTChallenge text, PoseTrack21-style JSON and annotated video.

Each writer is safe to interrupt: the MOT file is appended frame by frame (one write
per frame, cut back to the last whole frame when a write fails), the JSON is rewritten
atomically (temporary file + rename) from records kept on disk, and the
video is finalised on close, so Ctrl-C or a full disk leaves valid files. Every failure
to create or write a file is an :class:`~kpr_track.errors.OutputError` naming the file
and the OS error.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import cv2
import numpy as np

from ..detections import Detections
from ..errors import OutputError
from ..keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn an :class:`OSError` raised in the block into an :class:`OutputError` naming
    ``path`` and the OS error (e.g. "No space left on device")."""
    try:
        yield
    except OSError as error:
        raise OutputError(f"{path}: cannot write ({error.strerror or error})") from None


class MOTWriter:
    """MOTChallenge results: ``frame,id,left,top,width,height,conf,-1,-1,-1``, frames from 1."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with writing(self.path):
            self._file = self.path.open("wb", buffering=0)
        self._size = 0  # bytes of whole frames written

    def write(self, frame_id: int, detections: Detections, track_ids: np.ndarray) -> None:
        """Append the tracked detections (``track_ids >= 0``) of one frame, unbuffered.

        Raises:
            OutputError: the write failed (e.g. disk full); the file is cut back to the
                frames written before, so it stays a valid MOTChallenge file.
        """
        lines = []
        for box, score, track_id in zip(
            detections.boxes, detections.scores, track_ids, strict=True
        ):
            if track_id < 0:
                continue
            left, top, right, bottom = (float(v) for v in box)
            lines.append(
                f"{frame_id},{int(track_id)},{left:.2f},{top:.2f},{right - left:.2f},"
                f"{bottom - top:.2f},{float(score):.4f},-1,-1,-1\n"
            )
        data = memoryview("".join(lines).encode("ascii"))
        with writing(self.path):
            try:
                while data:
                    data = data[self._file.write(data) :]
            except OSError:
                with suppress(OSError):  # best effort: a device cannot be truncated
                    self._file.truncate(self._size)
                    self._file.seek(self._size)
                raise
        self._size = self._file.tell()

    def close(self) -> None:
        self._file.close()


def posetrack_categories() -> list[dict]:
    """The PoseTrack21 ``categories`` entry for COCO-17 keypoints (skeleton 1-based)."""
    return [
        {
            "supercategory": "person",
            "id": 1,
            "name": "person",
            "keypoints": list(COCO_KEYPOINT_NAMES),
            "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON],
        }
    ]


class PoseTrackWriter:
    """PoseTrack21-layout results (``images``, ``annotations`` with ``keypoints``,
    ``scores`` and ``track_id``, ``categories``), rewritten atomically.

    Memory stays flat however long the video: every record is serialised when its frame
    is written and kept in an unlinked temporary file beside ``path`` (nothing is left
    behind, even by a killed process); the document is streamed from those files into
    a temporary file and renamed over ``path`` every ``flush_every`` frames, or every
    tenth of the frames written so far when that is more (so the rewrites of a long
    video cost a constant multiple of the final file size), and on :meth:`close`.

    Args:
        path: output ``.json`` file.
        video_name: used for ``file_name`` (``<video_name>/<frame:06d>.jpg``).
        flush_every: rewrite the file at least every this many frames.
        images: frame number -> the image record to write for it (e.g. the ``id``,
            ``file_name``, ``frame_id`` and ``vid_id`` of a PoseTrack21 ground truth);
            ``None``: image id = frame number and ``file_name`` from ``video_name``.

    Raises:
        OutputError: a file could not be created or written.
    """

    def __init__(
        self,
        path: str | Path,
        video_name: str,
        flush_every: int = 50,
        images: Mapping[int, dict] | None = None,
    ) -> None:
        self.path = Path(path)
        self.video_name = video_name
        self.flush_every = flush_every
        self.image_records = images
        with writing(self.path):
            self._images = _RecordFile(self.path.parent)
            self._annotations = _RecordFile(self.path.parent)
        self._frames = self._annotation_count = self._frames_at_dump = 0
        self._dump()

    def write(
        self,
        frame_id: int,
        detections: Detections,
        track_ids: np.ndarray,
        interpolated: np.ndarray | None = None,
    ) -> None:
        """Record one frame (image id = frame number unless ``images`` says otherwise) and
        its tracked people; ``interpolated`` `(N,)` bool marks rows filled in by gap
        interpolation (each annotation's ``"interpolated"`` field; None: all False)."""
        if interpolated is None:
            interpolated = np.zeros(len(detections), bool)
        if self.image_records is not None:
            image = dict(self.image_records[frame_id])
        else:
            image = {
                "id": frame_id,
                "file_name": f"{self.video_name}/{frame_id - 1:06d}.jpg",
                "frame_id": frame_id,
                "vid_id": self.video_name,
                "is_labeled": True,
            }
        annotations = []
        for box, score, keypoints, track_id, filled in zip(
            detections.boxes,
            detections.scores,
            detections.keypoints,
            track_ids,
            interpolated,
            strict=True,
        ):
            if track_id < 0:
                continue
            left, top, right, bottom = (round(float(v), 2) for v in box)
            coords = np.round(keypoints[:, :2].astype(float), 2)
            self._annotation_count += 1
            annotations.append(
                {
                    "id": self._annotation_count,
                    "image_id": image["id"],
                    "category_id": 1,
                    "bbox": [left, top, round(right - left, 2), round(bottom - top, 2)],
                    "keypoints": np.c_[coords, np.ones(len(coords))].ravel().tolist(),
                    "scores": np.round(keypoints[:, 2].astype(float), 4).tolist(),
                    "score": round(float(score), 4),
                    "track_id": int(track_id),
                    "interpolated": bool(filled),
                }
            )
        with writing(self.path):
            self._images.append([image])
            self._annotations.append(annotations)
        self._frames += 1
        since = self._frames - self._frames_at_dump
        if since >= max(self.flush_every, self._frames // 10):
            self._dump()

    def close(self) -> None:
        try:
            self._dump()
        finally:
            self._images.close()
            self._annotations.close()

    def _dump(self) -> None:
        """Stream the records into a temporary file and rename it over :attr:`path`."""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with writing(self.path):
            try:
                with tmp.open("wb") as out:
                    out.write(b'{"images": [\n')
                    self._images.copy_items(out)
                    out.write(b'\n],\n"annotations": [\n')
                    self._annotations.copy_items(out)
                    categories = json.dumps(posetrack_categories())
                    out.write(f'\n],\n"categories": {categories}}}\n'.encode())
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
        self._frames_at_dump = self._frames


class _RecordFile:
    """JSON records in an unlinked temporary file in ``folder``, each stored as
    ``",\n" + record`` so the file minus its first separator is a JSON array's items."""

    _SEPARATOR = b",\n"

    def __init__(self, folder: Path) -> None:
        self._file = tempfile.TemporaryFile("w+b", buffering=0, dir=folder)
        self._size = 0  # bytes of whole appends

    def append(self, records: list[dict]) -> None:
        """Append ``records`` in one write; on failure cut back to the records before.

        Raises:
            OSError: the write failed (the file keeps only whole records).
        """
        text = "".join(",\n" + json.dumps(record) for record in records)
        data = memoryview(text.encode())
        self._file.seek(self._size)
        try:
            while data:
                data = data[self._file.write(data) :]
        except OSError:
            with suppress(OSError):
                self._file.truncate(self._size)
            raise
        self._size = self._file.tell()

    def copy_items(self, out) -> None:
        """Write the records to the binary file ``out`` as comma-separated JSON items."""
        self._file.seek(len(self._SEPARATOR))
        remaining = max(self._size - len(self._SEPARATOR), 0)
        while remaining:
            chunk = self._file.read(min(remaining, 1 << 20))
            out.write(chunk)
            remaining -= len(chunk)

    def close(self) -> None:
        self._file.close()


def write_json_atomic(path: str | Path, data: object) -> None:
    """Write ``data`` as JSON through a temporary file and an atomic rename, so ``path``
    always holds either the previous or the new complete document.

    Raises:
        OutputError: the file could not be written; ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with writing(path):
        try:
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class VideoWriter:
    """MP4 (``mp4v``) writer for annotated frames; finalised by :meth:`close`.

    OpenCV reports no write error (only a warning per frame on stderr, silenced while
    this writer is open), so the file is checked when it is opened and after it is
    finalised. A video cut short by a full disk cannot be finalised; the text and JSON
    results of the same run stay valid.

    Raises:
        OutputError: the file cannot be created, or on :meth:`close` the finished file
            does not hold every frame written (e.g. the disk filled up).
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise OutputError(f"{self.path}: cannot write (OpenCV could not create the video)")
        self._frames = 0
        self._log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self._frames += 1

    def close(self) -> None:
        self._writer.release()
        cv2.utils.logging.setLogLevel(self._log_level)
        capture = cv2.VideoCapture(str(self.path))
        written = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        capture.release()
        if self._frames and written != self._frames:
            raise OutputError(
                f"{self.path}: cannot write (the finished video holds {written} of "
                f"{self._frames} frames; is the disk full?)"
            )


def close_all(writers: list) -> OutputError | None:
    """Close every writer, even when one fails; the first :class:`OutputError`, if any."""
    first = None
    for writer in writers:
        try:
            writer.close()
        except OutputError as error:
            first = first or error
    return first
