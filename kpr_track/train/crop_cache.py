"""Person crops of a ReID split, extracted once and cached as JPEGs plus an index JSON.

Each sample's box is warped to the model input size ``H x W`` (bilinear, outside the
frame reads black); its keypoints and negative keypoints are mapped into crop pixels
with the same transform as :func:`kpr_track.prompts.keypoints_in_crops`. The cache
folder holds ``<ann_id>.jpg`` files and ``index.json``; it is rebuilt when the sample
list or the size changes. Samples whose box is empty (width or height < 1 px) or lies
outside the frame are skipped, counted and logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .dataset import ReIDSample

_LOG = logging.getLogger(__name__)
INDEX = "index.json"


@dataclass(frozen=True)
class CropRecord:
    """One cached crop.

    Attributes:
        path: the crop JPEG, ``H x W`` BGR.
        keypoints: `(17, 3)` float32 ``(x, y, conf)`` in crop pixels.
        negatives: `(M, 17, 3)` float32 other people's keypoints in crop pixels.
        identity, camera, frame, split, ann_id: as in :class:`ReIDSample`.
    """

    path: Path
    keypoints: np.ndarray
    negatives: np.ndarray
    identity: str
    camera: str
    frame: int
    split: str
    ann_id: int


def cache_crops(
    samples: list[ReIDSample], cache_dir: str | Path, size: tuple[int, int] = (256, 128)
) -> tuple[list[CropRecord], Counter]:
    """Extract (or reuse) the crops of ``samples``.

    Args:
        samples: from :func:`kpr_track.train.dataset.load_reid_split`.
        cache_dir: folder for the JPEGs and ``index.json``.
        size: crop ``(H, W)`` in pixels.

    Returns:
        ``(records, skipped)``: the cached crops in sample order, and a count of the
        skipped samples per reason.

    Raises:
        InputError: a frame image that is missing or unreadable.
    """
    cache_dir = Path(cache_dir)
    key = _signature(samples, size)
    index_path = cache_dir / INDEX
    if index_path.is_file():
        stored = json.loads(index_path.read_text())
        if stored.get("signature") == key:
            return [_from_json(cache_dir, item) for item in stored["records"]], Counter(
                stored["skipped"]
            )
    cache_dir.mkdir(parents=True, exist_ok=True)
    records, skipped = [], Counter()
    by_image: dict[Path, list[ReIDSample]] = {}
    for sample in samples:
        by_image.setdefault(sample.image, []).append(sample)
    for image_path, people in by_image.items():
        frame = cv2.imread(str(image_path))
        if frame is None:
            raise InputError(f"{image_path}: frame image missing or unreadable")
        height, width = frame.shape[:2]
        for sample in people:
            x0, y0, x1, y1 = sample.box
            if x1 - x0 < 1 or y1 - y0 < 1:
                skipped["empty box"] += 1
                continue
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                skipped["box outside the frame"] += 1
                continue
            crop, to_crop = warp_box(frame, sample.box, size)
            path = cache_dir / f"{sample.ann_id}.jpg"
            cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            records.append(
                CropRecord(
                    path=path,
                    keypoints=to_crop(sample.keypoints),
                    negatives=to_crop(sample.negatives),
                    identity=sample.identity,
                    camera=sample.camera,
                    frame=sample.frame,
                    split=sample.split,
                    ann_id=sample.ann_id,
                )
            )
    for reason, count in skipped.items():
        _LOG.warning("skipped %d sample(s): %s", count, reason)
    index = {"signature": key, "skipped": dict(skipped), "records": [_to_json(r) for r in records]}
    index_path.write_text(json.dumps(index))
    return records, skipped


def warp_box(frame: np.ndarray, box: np.ndarray, size: tuple[int, int]):
    """Warp the box region of ``frame`` to ``size`` and return the keypoint transform.

    Uses continuous pixel coordinates (a pixel's centre at +0.5), like RoIAlign with
    ``aligned=True``: crop ``u = (x - x0) * W / (x1 - x0)``.

    Returns:
        ``(crop (H, W, 3) uint8, to_crop)`` where ``to_crop`` maps `(..., 17, 3)` frame
        keypoints to crop pixels (confidences kept).
    """
    height, width = size
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = width / (x1 - x0), height / (y1 - y0)
    matrix = np.array(
        [[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]], np.float32
    )
    crop = cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR)

    def to_crop(keypoints: np.ndarray) -> np.ndarray:
        out = np.array(keypoints, np.float32, copy=True)
        out[..., 0] = (out[..., 0] - x0) * sx
        out[..., 1] = (out[..., 1] - y0) * sy
        return out

    return crop, to_crop


def min_samples_per_identity(
    records: list[CropRecord], minimum: int = 2
) -> tuple[list[CropRecord], int]:
    """Drop identities with fewer than ``minimum`` samples.

    Returns:
        ``(kept records, number of identities dropped)``; the drop is logged.
    """
    counts = Counter(r.identity for r in records)
    small = {identity for identity, count in counts.items() if count < minimum}
    if small:
        _LOG.warning("skipped %d identities with < %d samples", len(small), minimum)
    return [r for r in records if r.identity not in small], len(small)


def _signature(samples: list[ReIDSample], size: tuple[int, int]) -> str:
    digest = hashlib.sha256(repr(size).encode())
    for s in samples:
        digest.update(f"{s.ann_id}|{s.image}|{s.box.tolist()}|{s.split}".encode())
    return digest.hexdigest()


def _to_json(record: CropRecord) -> dict:
    return {
        "file": record.path.name,
        # Exact float32 values: a run reading the cache must see the crops a run that
        # filled it saw, or a resumed training run would not match an uninterrupted one.
        "keypoints": record.keypoints.tolist(),
        "negatives": record.negatives.tolist(),
        "identity": record.identity,
        "camera": record.camera,
        "frame": record.frame,
        "split": record.split,
        "ann_id": record.ann_id,
    }


def _from_json(cache_dir: Path, item: dict) -> CropRecord:
    return CropRecord(
        path=cache_dir / item["file"],
        keypoints=np.asarray(item["keypoints"], np.float32).reshape(17, 3),
        negatives=np.asarray(item["negatives"], np.float32).reshape(-1, 17, 3),
        identity=item["identity"],
        camera=item["camera"],
        frame=item["frame"],
        split=item["split"],
        ann_id=item["ann_id"],
    )
