"""Result writers: MOTChallenge text, PoseTrack21-style JSON and annotated video.

Each writer is safe to interrupt: the MOT file is appended and flushed frame by frame,
the JSON is rewritten atomically (temporary file + rename) every ``flush_every``
frames and on close, and the video is finalised on close, so Ctrl-C leaves valid files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from .detections import Detections
from .keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON


class MOTWriter:
    """MOTChallenge results: ``frame,id,left,top,width,height,conf,-1,-1,-1``, frames from 1."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("w", encoding="ascii")

    def write(self, frame_id: int, detections: Detections, track_ids: np.ndarray) -> None:
        """Append the tracked detections (``track_ids >= 0``) of one frame and flush."""
        for box, score, track_id in zip(
            detections.boxes, detections.scores, track_ids, strict=True
        ):
            if track_id < 0:
                continue
            left, top, right, bottom = (float(v) for v in box)
            self._file.write(
                f"{frame_id},{int(track_id)},{left:.2f},{top:.2f},{right - left:.2f},"
                f"{bottom - top:.2f},{float(score):.4f},-1,-1,-1\n"
            )
        self._file.flush()

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

    Args:
        path: output ``.json`` file.
        video_name: used for ``file_name`` (``<video_name>/<frame:06d>.jpg``).
        flush_every: rewrite the file every this many frames.
        images: frame number -> the image record to write for it (e.g. the ``id``,
            ``file_name``, ``frame_id`` and ``vid_id`` of a PoseTrack21 ground truth);
            ``None``: image id = frame number and ``file_name`` from ``video_name``.
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
        self._images: list[dict] = []
        self._annotations: list[dict] = []
        self._dump()

    def write(self, frame_id: int, detections: Detections, track_ids: np.ndarray) -> None:
        """Record one frame (image id = frame number unless ``images`` says otherwise) and
        its tracked people."""
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
        self._images.append(image)
        for box, score, keypoints, track_id in zip(
            detections.boxes, detections.scores, detections.keypoints, track_ids, strict=True
        ):
            if track_id < 0:
                continue
            left, top, right, bottom = (round(float(v), 2) for v in box)
            coords = np.round(keypoints[:, :2].astype(float), 2)
            self._annotations.append(
                {
                    "id": len(self._annotations) + 1,
                    "image_id": image["id"],
                    "category_id": 1,
                    "bbox": [left, top, round(right - left, 2), round(bottom - top, 2)],
                    "keypoints": np.c_[coords, np.ones(len(coords))].ravel().tolist(),
                    "scores": np.round(keypoints[:, 2].astype(float), 4).tolist(),
                    "score": round(float(score), 4),
                    "track_id": int(track_id),
                }
            )
        if len(self._images) % self.flush_every == 0:
            self._dump()

    def close(self) -> None:
        self._dump()

    def _dump(self) -> None:
        data = {
            "images": self._images,
            "annotations": self._annotations,
            "categories": posetrack_categories(),
        }
        write_json_atomic(self.path, data)


def write_json_atomic(path: str | Path, data: object) -> None:
    """Write ``data`` as JSON through a temporary file and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class VideoWriter:
    """MP4 (``mp4v``) writer for annotated frames; finalised by :meth:`close`."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def close(self) -> None:
        self._writer.release()
