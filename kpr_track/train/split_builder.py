"""Build an occluded ReID split from a MOTChallenge sequence, in the Occluded-PoseTrack-ReID
file format (DESIGN.md §5), so that one loader (:mod:`kpr_track.train.dataset`) serves both.

Recipe (the Occluded-PoseTrack-ReID recipe of KPR, ECCV 2024, Sec. 4.1, on one video):

1. every ``frame_step``-th frame is read; its people are the ground-truth boxes of the
   person classes (1 pedestrian, 2 person on vehicle, 7 static person); keypoints come
   from a top-down pose model on those boxes (cached in ``cache/keypoints.npz``);
2. samples are pedestrians (class 1) with consider flag 1; boxes are clipped to the
   frame and skipped (counted) when shorter than ``min_height`` px or when the
   ground-truth visibility (column 9) is below ``min_visibility``;
3. identities are split disjointly with a fixed seed: ``test_fraction`` of them go to
   query/gallery, the rest to train;
4. for each test identity with at least 2 samples, the ``queries_per_identity`` most
   occluded samples (occlusion = negative / target keypoint visibility,
   :mod:`kpr_track.train.occlusion`) are queries; of the rest, every
   ``gallery_step``-th sample in frame order is gallery.

Output under ``out_root`` (PoseTrack21 layout)::

    images/<seq>/<frame:06d>.jpg
    posetrack_data/{train,val}/<seq>.json          all people of the sampled frames
    occluded_posetrack_reid/{train,val}_dataset_sampling.json
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..evaluation.mot import read_mot_table, read_seqinfo
from ..io.video import sequence_frames
from ..keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON
from .occlusion import negative_keypoints, occlusion_score

_LOG = logging.getLogger(__name__)
PERSON_CLASSES = (1, 2, 7)
PEDESTRIAN = 1

PoseFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SplitOptions:
    """Sampling of the split (see the module docstring for the recipe).

    Attributes:
        frame_step: read every n-th frame (1-based frames 1, 1 + n, ...).
        gallery_step: keep every n-th non-query sample of a test identity as gallery.
        test_fraction: share of identities in query/gallery.
        queries_per_identity: most occluded samples per test identity used as queries.
        min_height: smallest box height in px kept as a sample.
        min_visibility: smallest ground-truth visibility ratio (column 9) kept.
        min_confidence: keypoint confidence threshold for the occlusion score.
        seed: seed of the identity split.
        max_frames: only the first n frames of the sequence (``None``: all).
        all_pedestrians: the ground truth has no class / visibility columns
            (MOTChallenge 2015 layout, where columns 8-10 are world coordinates): every
            box is taken as a pedestrian with visibility 1.
    """

    frame_step: int = 3
    gallery_step: int = 2
    test_fraction: float = 0.5
    queries_per_identity: int = 2
    min_height: float = 40.0
    min_visibility: float = 0.2
    min_confidence: float = 0.3
    seed: int = 0
    max_frames: int | None = None
    all_pedestrians: bool = False


@dataclass
class SplitSummary:
    """Counts of what a build wrote and skipped."""

    frames: int = 0
    people: int = 0
    train_identities: int = 0
    test_identities: int = 0
    train: int = 0
    query: int = 0
    gallery: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count


def build_mot_reid_split(
    seq_dir: str | Path, out_root: str | Path, pose: PoseFn, options: SplitOptions = SplitOptions()
) -> SplitSummary:
    """Turn a MOTChallenge sequence with identity ground truth into an occluded ReID split.

    Args:
        seq_dir: sequence folder with ``seqinfo.ini``, ``gt/gt.txt`` (9 columns: consider
            flag, class, visibility) and the frames (the ``imDir`` image folder, or one
            video file in the folder).
        out_root: output dataset root (PoseTrack21 layout, see the module docstring).
        pose: top-down pose, ``(frame, boxes (N, 4) xyxy) -> (N, 17, 3)``
            (e.g. ``YoloPoseDetector.pose_on_boxes``).
        options: sampling options.

    Returns:
        The counts written and skipped (also logged).

    Raises:
        InputError: missing files, a ground truth without class / visibility columns,
            or no test identity with 2 samples.
    """
    seq_dir, out_root = Path(seq_dir), Path(out_root)
    info = read_seqinfo(seq_dir)
    name = info.get("name", seq_dir.name)
    gt_path = seq_dir / "gt" / "gt.txt"
    table = read_mot_table(gt_path, int(info["seqLength"]))
    if options.all_pedestrians:
        table = np.c_[table[:, :7], np.full(len(table), PEDESTRIAN), np.ones(len(table))]
    if table.shape[1] < 9:
        raise InputError(
            f"{gt_path}: expected 9 columns (consider flag, class, visibility), "
            f"got {table.shape[1]}"
        )
    summary = SplitSummary()
    images, annotations = [], []
    cache = _KeypointCache(out_root / "cache" / "keypoints.npz")
    for frame_id, frame in sequence_frames(seq_dir, options.max_frames, options.frame_step):
        rows = table[(table[:, 0] == frame_id) & np.isin(table[:, 7], PERSON_CLASSES)]
        height, width = frame.shape[:2]
        boxes = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]].astype(np.float32)
        boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        keypoints = cache.get(frame_id, boxes, lambda f=frame, b=boxes: pose(f, b))
        file_name = f"images/{name}/{frame_id:06d}.jpg"
        (out_root / file_name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out_root / file_name), frame)
        image_id = frame_id
        images.append(_image_entry(image_id, file_name, frame_id, name, width, height))
        for index, row in enumerate(rows):
            annotations.append(
                _annotation_entry(
                    image_id * 1000 + index, image_id, row, boxes[index], keypoints[index]
                )
            )
        summary.frames += 1
    cache.save()
    if not images:
        raise InputError(f"{seq_dir}: no frame read (check the video / image folder)")
    summary.people = len(annotations)
    labels = _assign_splits(annotations, options, summary)
    document = {"images": images, "annotations": annotations, "categories": [_CATEGORY]}
    for subset in ("train", "val"):
        folder = out_root / "posetrack_data" / subset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(document))
        write_split_file(
            out_root / "occluded_posetrack_reid" / f"{subset}_dataset_sampling.json",
            {a["id"]: labels[subset].get(a["id"], "none") for a in annotations},
        )
    _LOG.info("built occluded ReID split of %s in %s: %s", name, out_root, asdict(summary))
    return summary


def write_split_file(path: Path, labels: dict[int, str]) -> None:
    """Write a split file in the pandas ``to_json`` layout of Occluded-PoseTrack-ReID.

    Args:
        path: output ``*_dataset_sampling.json``.
        labels: annotation id -> ``"train" | "query" | "gallery" | "none"``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "id": {str(i): i for i in labels},
        "split": {str(i): label for i, label in labels.items()},
    }
    path.write_text(json.dumps(document))


def _assign_splits(
    annotations: list[dict], options: SplitOptions, summary: SplitSummary
) -> dict[str, dict[int, str]]:
    """Sample filtering, disjoint identity split, query / gallery choice."""
    by_image: dict[int, list[dict]] = {}
    for a in annotations:
        by_image.setdefault(a["image_id"], []).append(a)
    samples: dict[int, list[tuple[float, int, int]]] = {}  # identity -> (occlusion, frame, id)
    for a in annotations:
        if a["category_id_mot"] != PEDESTRIAN or not a["consider"]:
            continue
        if a["bbox"][3] < options.min_height:
            summary.skip(f"box height < {options.min_height:g} px")
            continue
        if a["visibility"] < options.min_visibility:
            summary.skip(f"gt visibility < {options.min_visibility:g}")
            continue
        x, y, w, h = a["bbox"]
        own = np.asarray(a["keypoints"], np.float32).reshape(17, 3)
        others = [b["keypoints"] for b in by_image[a["image_id"]] if b["id"] != a["id"]]
        negatives = negative_keypoints(
            np.array([x, y, x + w, y + h]), np.asarray(others, np.float32), options.min_confidence
        )
        score = occlusion_score(own, negatives, options.min_confidence)
        samples.setdefault(a["person_id"], []).append((score, a["image_id"], a["id"]))
    identities = np.array(sorted(samples))
    order = np.random.default_rng(options.seed).permutation(len(identities))
    num_test = int(round(options.test_fraction * len(identities)))
    test_ids = set(identities[order[:num_test]].tolist())
    labels: dict[str, dict[int, str]] = {"train": {}, "val": {}}
    for identity in identities.tolist():
        items = samples[identity]
        if len(items) < 2:
            summary.skip("identity with < 2 samples")
            continue
        if identity not in test_ids:
            summary.train_identities += 1
            summary.train += len(items)
            labels["train"].update((ann_id, "train") for *_, ann_id in items)
            continue
        ranked = sorted(items, key=lambda item: (-item[0], item[1]))
        num_queries = min(options.queries_per_identity, len(items) - 1)
        rest = sorted(ranked[num_queries:], key=lambda item: item[1])[:: options.gallery_step]
        summary.test_identities += 1
        summary.query += num_queries
        summary.gallery += len(rest)
        labels["val"].update((ann_id, "query") for *_, ann_id in ranked[:num_queries])
        labels["val"].update((ann_id, "gallery") for *_, ann_id in rest)
    if summary.test_identities == 0:
        raise InputError("no test identity with 2 or more samples; lower min_height / frame_step")
    return labels


class _KeypointCache:
    """Per-frame top-down keypoints kept in one ``.npz`` so a rebuild skips the pose model.

    Entries are keyed by frame and by a digest of the frame's boxes, so a rebuild with
    other options (other boxes) never reuses keypoints of different people.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as stored:
                self.items = {key: stored[key] for key in stored.files}

    def get(
        self, frame_id: int, boxes: np.ndarray, compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        digest = hashlib.sha1(np.ascontiguousarray(boxes, np.float32).tobytes()).hexdigest()
        key = f"frame{frame_id:06d}_{digest[:12]}"
        if key not in self.items:
            self.items[key] = np.asarray(compute(), np.float32).reshape(-1, 17, 3)
        return self.items[key]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(self.path, **self.items)


_CATEGORY = {
    "id": 1,
    "name": "person",
    "supercategory": "person",
    "keypoints": list(COCO_KEYPOINT_NAMES),
    "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON],
}


def _image_entry(
    image_id: int, file_name: str, frame_id: int, video: str, width: int, height: int
) -> dict:
    return {
        "id": image_id,
        "file_name": file_name,
        "frame_id": frame_id,
        "vid_id": video,
        "is_labeled": True,
        "width": width,
        "height": height,
        "ignore_regions_x": [],
        "ignore_regions_y": [],
    }


def _annotation_entry(
    ann_id: int, image_id: int, row: np.ndarray, box: np.ndarray, keypoints: np.ndarray
) -> dict:
    """A PoseTrack21 annotation plus the MOT columns ``consider``, ``category_id_mot``
    and ``visibility`` (extra keys PoseTrack21 readers ignore)."""
    x0, y0, x1, y1 = (round(float(v), 2) for v in box)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
        "bbox_head": [],
        "keypoints": [round(float(v), 3) for v in np.asarray(keypoints).reshape(-1)],
        "track_id": int(row[1]),
        "person_id": int(row[1]),
        "consider": bool(row[6]),
        "category_id_mot": int(row[7]),
        "visibility": round(float(row[8]), 3),
    }
