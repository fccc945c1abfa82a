"""Person crops of a ReID split, extracted once and cached as JPEGs plus an index JSON.

Each sample is cut exactly as at inference: its crop window (the box clipped to the
frame, :func:`kpr_track.reid.crops.crop_windows`) resized to the model input size
``H x W`` by the same RoIAlign (:func:`kpr_track.reid.crops.crop_boxes`); its keypoints
and negative keypoints are mapped into crop pixels of that window with
:func:`kpr_track.prompts.keypoints_in_crops`, as the prompts of inference are. The cache
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
from ..prompts import keypoints_in_crops
from ..reid.crops import crop_boxes, crop_windows
from .dataset import ReIDSample, load_reid_splits

_LOG = logging.getLogger(__name__)
INDEX = "index.json"
# Part of the cache signature: a cache cut with another crop geometry is rebuilt.
GEOMETRY = "clipped-window-roialign-v1"


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
        kept = []
        for sample in people:
            x0, y0, x1, y1 = sample.box
            if x1 - x0 < 1 or y1 - y0 < 1:
                skipped["empty box"] += 1
            elif x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                skipped["box outside the frame"] += 1
            else:
                kept.append(sample)
        if not kept:
            continue
        windows = crop_windows(np.stack([s.box for s in kept]), frame.shape)
        crops = crop_boxes(frame, windows, size).round_().clamp_(0, 255).byte()
        crops = crops.permute(0, 2, 3, 1).flip(-1).numpy()  # (B, H, W, 3) BGR uint8
        for sample, window, crop in zip(kept, windows, crops, strict=True):
            path = cache_dir / f"{sample.ann_id}.jpg"
            cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            records.append(
                CropRecord(
                    path=path,
                    keypoints=window_keypoints(window, sample.keypoints, size),
                    negatives=window_keypoints(window, sample.negatives, size),
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


def cached_records(
    roots: list[str | Path], subset: str, cache_dir: str | Path, size: tuple[int, int]
) -> list[CropRecord]:
    """The cached crops of a subset of one or several splits (skips are logged).

    One root caches under ``<cache_dir>/<subset>_HxW``; several under
    ``<cache_dir>/<root folder name>/<subset>_HxW`` each (annotation ids repeat across
    roots), identities and cameras kept distinct
    (:func:`~kpr_track.train.dataset.load_reid_splits`).

    Raises:
        InputError: see :func:`~kpr_track.train.dataset.load_reid_splits`.
    """
    loaded = load_reid_splits(roots, subset)
    records = []
    for root, samples in loaded:
        folder = Path(cache_dir) / (root.name if len(loaded) > 1 else "")
        part, skipped = cache_crops(samples, folder / f"{subset}_{size[0]}x{size[1]}", size)
        if skipped:
            _LOG.info("%s %s: skipped %s", root.name, subset, dict(skipped))
        records += part
    return records


def window_keypoints(window: np.ndarray, keypoints: np.ndarray, size: tuple[int, int]):
    """Keypoints in crop pixels of one crop window (confidences kept).

    Args:
        window: `(4,)` float xyxy frame pixels (:func:`kpr_track.reid.crops.crop_windows`).
        keypoints: `(..., 17, 3)` float ``(x px, y px, confidence)`` in frame pixels.
        size: crop ``(H, W)``.

    Returns:
        `(..., 17, 3)` float32, ``x, y`` in crop pixels (:func:`keypoints_in_crops`).
    """
    points = np.asarray(keypoints, np.float32)
    flat = points.reshape(-1, 17, 3)
    out = flat.copy()
    out[..., :2] = keypoints_in_crops(np.asarray(window, np.float32)[None], flat, size)[0]
    return out.reshape(points.shape)


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
    digest = hashlib.sha256(f"{GEOMETRY}|{size!r}".encode())
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
