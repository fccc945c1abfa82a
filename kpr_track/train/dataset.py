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

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.jsonfields import check_type, get, integer, load_json, numbers
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
        InputError: missing or malformed file, an unknown label, keys of ``id`` and
            ``split`` that differ, or an annotation id listed twice.
    """
    if not path.is_file():
        raise InputError(f"{path}: split file not found (expected <root>/occluded_posetrack_reid/)")
    document = load_json(path, expect=object)
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key), dict) for key in ("id", "split")
    ):
        raise InputError(f"{path}: expected {{'id': {{...}}, 'split': {{...}}}} (pandas to_json)")
    ids, splits = document["id"], document["split"]
    if ids.keys() != splits.keys():
        odd = sorted(ids.keys() ^ splits.keys())[:3]
        raise InputError(f"{path}: 'id' and 'split' must have the same keys; e.g. {odd} differ")
    labels: dict[int, str] = {}
    for key, value in ids.items():
        label = splits[key]
        if label not in SPLIT_LABELS:
            raise InputError(
                f"{path}: split[{key!r}] = {label!r}; expected one of {list(SPLIT_LABELS)}"[:300]
            )
        ann_id = integer(value, path, f"id[{key!r}]")
        if ann_id in labels:
            raise InputError(f"{path}: id[{key!r}] = {ann_id}: annotation id listed twice")
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


def load_reid_splits(roots: list[str | Path], subset: str) -> list[tuple[Path, list[ReIDSample]]]:
    """:func:`load_reid_split` of several roots, identities and cameras kept distinct.

    With one root the samples are as :func:`load_reid_split` gives them; with several,
    each sample's ``identity`` and ``camera`` are prefixed ``"<root folder name>/"`` so
    person 3 of one sequence is never person 3 of another.

    Args:
        roots: dataset roots (distinct folder names when more than one).
        subset: ``"train"`` or ``"val"``.

    Returns:
        ``[(root, samples), ...]`` in the order of ``roots``.

    Raises:
        InputError: see :func:`load_reid_split`; two roots with the same folder name.
    """
    paths = [Path(root) for root in roots]
    names = [path.name for path in paths]
    if len(set(names)) != len(names):
        raise InputError(f"data roots {names}: folder names must differ (identity prefixes)")
    loaded = []
    for path in paths:
        samples = load_reid_split(path, subset)
        if len(paths) > 1:
            samples = [
                replace(s, identity=f"{path.name}/{s.identity}", camera=f"{path.name}/{s.camera}")
                for s in samples
            ]
        loaded.append((path, samples))
    return loaded


def _read_video(
    path: Path, root: Path, labels: dict[int, str], wanted: set[int]
) -> dict[int, ReIDSample]:
    document = load_json(path, expect=dict)
    images: dict[int, dict] = {}
    listed = document.get("images", [])
    check_type(listed, list, path, "images")
    for index, image in enumerate(listed):
        where = f"images[{index}]"
        check_type(image, dict, path, where)
        image_id = integer(get(image, "id", (int, float), path, where), path, f"{where}.id")
        if image_id in images:
            raise InputError(f"{path}: {where}.id: image id {image_id} appears twice")
        images[image_id] = image
    by_image: dict[int, list[tuple[dict, np.ndarray]]] = {}
    for index, annotation in enumerate(get(document, "annotations", list, path, "")):
        where = f"annotations[{index}]"
        check_type(annotation, dict, path, where)
        image_id = integer(
            get(annotation, "image_id", (int, float), path, where), path, f"{where}.image_id"
        )
        if image_id not in images:
            raise InputError(f"{path}: {where}.image_id {image_id} is not in 'images'")
        by_image.setdefault(image_id, []).append((annotation, _keypoints(annotation, path, where)))
    samples = {}
    for image_id, people in by_image.items():
        image = images[image_id]
        for annotation, keypoints in people:
            ann_id = annotation.get("id")
            if not isinstance(ann_id, int) or ann_id not in wanted:
                continue
            where = f"annotation id {ann_id}"
            box = _box(annotation, path, where)
            others = [kp for other, kp in people if other is not annotation]
            identity = annotation.get("person_id")
            if identity is None:
                track = get(annotation, "track_id", (int, str), path, where)
                identity = f"{image.get('vid_id')}:{track}"
            check_type(identity, (int, str), path, f"{where}.person_id")
            camera = image.get("vid_id", path.stem)
            check_type(camera, (int, str), path, f"image {image_id}.vid_id")
            frame = image.get("frame_id", image_id)
            samples[ann_id] = ReIDSample(
                ann_id=ann_id,
                image=root / get(image, "file_name", str, path, f"image {image_id}"),
                box=box,
                keypoints=keypoints,
                negatives=negative_keypoints(box, np.asarray(others).reshape(-1, 17, 3)),
                identity=str(identity),
                camera=str(camera),
                frame=integer(frame, path, f"image {image_id}.frame_id"),
                split=labels[ann_id],
            )
    return samples


def _keypoints(annotation: dict, path: Path, where: str) -> np.ndarray:
    """`(17, 3)` keypoints of an annotation (zeros without any), visibility in [0, 1]."""
    values = annotation.get("keypoints")
    if values is None or values == []:
        return np.zeros((17, 3), np.float32)
    flat = numbers(values, 51, path, f"{where}.keypoints")
    keypoints = np.asarray(flat, np.float32).reshape(17, 3)
    if not np.isfinite(keypoints).all():
        raise InputError(f"{path}: {where}.keypoints: values beyond float32 range")
    keypoints[:, 2] = np.clip(keypoints[:, 2], 0.0, 1.0)
    return keypoints


def _box(annotation: dict, path: Path, where: str) -> np.ndarray:
    """`(4,)` float32 xyxy from ``bbox`` ``[x, y, w, h]`` (empty boxes are skipped later,
    by the crop cache)."""
    x, y, w, h = numbers(annotation.get("bbox"), 4, path, f"{where}.bbox")
    box = np.array([x, y, x + w, y + h], np.float32)
    if not np.isfinite(box).all():
        raise InputError(f"{path}: {where}.bbox: values beyond float32 range")
    return box
