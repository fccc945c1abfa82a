"""Per-frame camera warps of a sequence, estimated once and cached beside the detections.

Camera-motion compensation reads the frames (:class:`kpr_track.trackers.camera_motion.
CameraMotion`); the quality benchmark runs many trackers on cached detections without
decoding frames again, so the warps are estimated once per sequence (they do not depend
on the detector) and stored as
``<cache_dir>/<sequence>__camera-<estimator>[__first<N>].npz`` (``camera_motion.ESTIMATOR``:
another estimator makes another file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kpr_track.io.video import sequence_frames
from kpr_track.trackers.camera_motion import ESTIMATOR, CameraMotion


def camera_warps(seq_dir: Path, cache_dir: Path, max_frames: int | None = None) -> dict:
    """Frame id -> `(2, 3)` float64 warp from the previous frame (identity for frame 1).

    Raises:
        InputError: when the sequence's frames cannot be read.
    """
    suffix = "" if max_frames is None else f"__first{max_frames}"
    path = cache_dir / f"{seq_dir.name}__camera-{ESTIMATOR}{suffix}.npz"
    if not path.is_file():
        estimator = CameraMotion()
        frame_ids, warps = [], []
        for frame_id, frame in sequence_frames(seq_dir, max_frames):
            frame_ids.append(frame_id)
            warps.append(estimator(frame))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, frame_ids=np.asarray(frame_ids, np.int64), warps=np.stack(warps))
        os.replace(tmp, path)
    with np.load(path) as stored:
        return dict(zip(stored["frame_ids"].tolist(), stored["warps"], strict=True))
