"""The Occluded-PoseTrack-ReID loader: PoseTrack21 annotations + split files -> ReID samples.

Reads ``<root>/posetrack_data/<subset>/*.json`` (PoseTrack21 layout, DESIGN.md §5) and
``<root>/occluded_posetrack_reid/<subset>_dataset_sampling.json`` (pandas ``to_json`` of
columns ``id`` and ``split``), joined on the annotation id. Identity = ``person_id``
(PoseTrack 2018 files have none: ``<vid_id>:<track_id>`` then); camera = the image's
``vid_id``; negative keypoints = the keypoints of the other annotations of the same
image that fall inside the sample's box. The same files come out of
:mod:`kpr_track.train.split_builder`, so one loader serves both.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .occlusion import negative_keypoints

_LOG = logging.getLogger(__name__)
SPLIT_LABELS = ("train", "query", "gallery", "none")
SUBSETS = ("train", "val")


@dataclass(frozen=True)
class ReIDSample:
    """One annotated person of the split.

    Attributes:
        ann_id: annotation id (the join key of the split file).
        image: path of the frame.
        box: `(4,)` float32 xyxy in frame pixels.
        keypoints: `(17, 3)` float32 ``(x px, y px, visibility or confidence)``.
        negatives: `(M, 17, 3)` float32 keypoints of other people inside the box.
        identity: person identity (``person_id`` as text).
        camera: video id.
        frame: the image's ``frame_id``.
        split: ``"train"``, ``"query"`` or ``"gallery"``.
    """

    ann_id: int
    image: Path
    box: np.ndarray
    keypoints: np.ndarray
    negatives: np.ndarray
    identity: str
    camera: str
    frame: int
    split: str


def read_split_file(path: Path) -> dict[int, str]:
    """Read an Occluded-PoseTrack-ReID split file.

    Returns:
        annotation id -> split label (one of :data:`SPLIT_LABELS`).

    Raises:
        InputError: missing or malformed file, an unknown label, mismatched keys.
    """
    if not path.is_file():
        raise InputError(f"{path}: split file not found (expected <root>/occluded_posetrack_reid/)")
    document = _load_json(path)
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key), dict) for key in ("id", "split")
    ):
        raise InputError(f"{path}: expected {{'id': {{...}}, 'split': {{...}}}} (pandas to_json)")
    labels: dict[int, str] = {}
    for key, ann_id in document["id"].items():
        label = document["split"].get(key)
        if label not in SPLIT_LABELS:
            raise InputError(
                f"{path}: split[{key!r}] = {label!r}; expected one of {list(SPLIT_LABELS)}"
            )
        if not isinstance(ann_id, int) or isinstance(ann_id, bool):
            raise InputError(f"{path}: id[{key!r}] = {ann_id!r}; expected an integer")
        labels[ann_id] = label
    return labels


def load_reid_split(root: str | Path, subset: str) -> list[ReIDSample]:
    """Load the ``train`` or ``val`` subset of an Occluded-PoseTrack-ReID-layout dataset.

    Args:
        root: dataset root (holds ``posetrack_data/`` and ``occluded_posetrack_reid/``).
        subset: ``"train"`` (samples labelled train) or ``"val"`` (query and gallery).

    Returns:
        The samples whose split label is not ``"none"``, in split-file order.

    Raises:
        InputError: missing split file or annotation folder, malformed JSON, or an
            annotation id of the split file that no annotation file holds.
    """
    if subset not in SUBSETS:
        raise InputError(f"subset {subset!r}: expected one of {list(SUBSETS)}")
    root = Path(root)
    split_path = root / "occluded_posetrack_reid" / f"{subset}_dataset_sampling.json"
    labels = read_split_file(split_path)
    folder = root / "posetrack_data" / subset
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InputError(f"{folder}: no PoseTrack21 annotation files (*.json)")
    wanted = {ann_id for ann_id, label in labels.items() if label != "none"}
    samples: dict[int, ReIDSample] = {}
    for path in files:
        samples.update(_read_video(path, root, labels, wanted))
    missing = sorted(wanted - set(samples))
    if missing:
        raise InputError(
            f"{split_path}: {len(missing)} annotation id(s) not found in {folder}/*.json, "
            f"e.g. {missing[:3]}"
        )
    return [samples[ann_id] for ann_id in labels if ann_id in wanted]


def _read_video(
    path: Path, root: Path, labels: dict[int, str], wanted: set[int]
) -> dict[int, ReIDSample]:
    document = _load_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("annotations"), list):
        raise InputError(f"{path}: expected a PoseTrack21 mapping with 'images' and 'annotations'")
    images = {_field(image, "id", path, "images[]"): image for image in document.get("images", [])}
    by_image: dict[Any, list[tuple[dict, np.ndarray]]] = {}
    for index, annotation in enumerate(document["annotations"]):
        where = f"annotations[{index}]"
        image_id = _field(annotation, "image_id", path, where)
        if image_id not in images:
            raise InputError(f"{path}: {where}.image_id {image_id!r} is not in 'images'")
        by_image.setdefault(image_id, []).append((annotation, _keypoints(annotation, path, where)))
    samples = {}
    for image_id, people in by_image.items():
        image = images[image_id]
        for annotation, keypoints in people:
            ann_id = annotation.get("id")
            if ann_id not in wanted:
                continue
            where = f"annotation id {ann_id}"
            box = _box(annotation, path, where)
            others = [kp for other, kp in people if other is not annotation]
            identity = annotation.get("person_id")
            if identity is None:
                identity = f"{image.get('vid_id')}:{_field(annotation, 'track_id', path, where)}"
            samples[ann_id] = ReIDSample(
                ann_id=ann_id,
                image=root / _field(image, "file_name", path, f"image {image_id}"),
                box=box,
                keypoints=keypoints,
                negatives=negative_keypoints(box, np.asarray(others).reshape(-1, 17, 3)),
                identity=str(identity),
                camera=str(image.get("vid_id", path.stem)),
                frame=int(image.get("frame_id", image_id)),
                split=labels[ann_id],
            )
    return samples


def _keypoints(annotation: dict, path: Path, where: str) -> np.ndarray:
    values = annotation.get("keypoints")
    if values is None or len(values) == 0:
        return np.zeros((17, 3), np.float32)
    if not isinstance(values, list) or len(values) != 51:
        raise InputError(f"{path}: {where}.keypoints: expected 51 numbers (17 x (x, y, v))")
    try:
        keypoints = np.asarray(values, np.float32).reshape(17, 3)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}.keypoints: expected numbers") from None
    keypoints[:, 2] = np.clip(keypoints[:, 2], 0.0, 1.0)
    return keypoints


def _box(annotation: dict, path: Path, where: str) -> np.ndarray:
    bbox = annotation.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise InputError(f"{path}: {where}.bbox: expected [x, y, w, h]")
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}.bbox: expected numbers, got {bbox!r}") from None
    return np.array([x, y, x + w, y + h], np.float32)


def _field(mapping: Any, name: str, path: Path, where: str) -> Any:
    if not isinstance(mapping, dict) or name not in mapping:
        raise InputError(f"{path}: {where}: missing field {name!r}")
    return mapping[name]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read ({error})") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
