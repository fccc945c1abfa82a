"""Readers for PoseTrack files: video JSON (PoseTrack18 / PoseTrack21), ``posetrack_mot``.

Layouts (PoseTrack21 ``doc/dataset_structure.md``; PoseTrack18 uses the same video JSON):

- ``posetrack_data/{train,val}/<video>.json``: ``images`` (``id``, ``file_name``,
  ``frame_id``, ``is_labeled``, ``ignore_regions_x/y``: one list of polygon x and y
  coordinates per region) and ``annotations`` (``image_id``, ``bbox`` ``[x, y, w, h]``,
  ``keypoints`` 17 x (x, y, v), ``track_id`` within the video, ``person_id`` across
  videos). The n-th image of the file is frame n, as in the official evaluation.
- ``posetrack_mot/mot/{split}/<video>/``: ``gt/gt.txt`` in MOTChallenge format (class
  column -1) and ``image_info.json``, a list of images with ``id``, ``frame_index``
  (the frame of ``gt.txt``, from 1) and ignore regions.
- Tracker results (``tracks.json``): the video JSON layout with ``scores`` (17 keypoint
  confidences) per annotation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.jsonfields import check_type as _expect
from ..io.jsonfields import get as _get
from ..io.jsonfields import integer as _integer
from ..io.jsonfields import load_json as _load_json
from ..io.jsonfields import numbers as _numbers
from .mot import read_mot_table
from .sequence import GroundTruth, Tracks

NUM_KEYPOINTS = 17


def read_posetrack_ground_truth(path: str | Path) -> GroundTruth:
    """Read a PoseTrack video JSON (``posetrack_data/<split>/<video>.json``).

    Every annotation with a ``bbox`` is a ground-truth box (consider flag 1).
    A frame counts as labelled when its image says ``is_labeled`` or
    ``has_labeled_person`` (both default to true when absent).

    Raises:
        InputError: on a missing file or a missing / malformed key (JSON path named).
    """
    path = Path(path)
    document = _load_json(path, expect=dict)
    images = _get(document, "images", list, path, "")
    frame_of_image: dict[int, int] = {}
    labeled = np.zeros(len(images), bool)
    ignore_regions: dict[int, list[np.ndarray]] = {}
    for index, image in enumerate(images):
        key = f"images[{index}]"
        _expect(image, dict, path, key)
        image_id = _integer(_get(image, "id", (int, float), path, key), path, f"{key}.id")
        _unique(image_id, frame_of_image, path, f"{key}.id")
        frame_of_image[image_id] = index + 1
        labeled[index] = bool(image.get("is_labeled", True) or image.get("has_labeled_person"))
        regions = _ignore_regions(image, path, key)
        if regions:
            ignore_regions[index + 1] = regions
    tracks = _read_annotations(document, path, frame_of_image, with_scores=False)
    return GroundTruth(
        name=path.stem,
        num_frames=len(images),
        tracks=tracks,
        protocol="PoseTrack21",
        source=path,
        labeled=labeled,
        ignore_regions=ignore_regions,
        image_frames=frame_of_image,
    )


def read_posetrack_images(path: str | Path) -> list[dict]:
    """The ``images`` records of a PoseTrack video JSON, in file order.

    Each record is checked to have an integer ``id`` and a string ``file_name``.

    Raises:
        InputError: on a missing file or a missing / malformed key (JSON path named).
    """
    path = Path(path)
    images = _get(_load_json(path, expect=dict), "images", list, path, "")
    if not images:
        raise InputError(f"{path}: images: expected at least one image record, got none")
    for index, image in enumerate(images):
        key = f"images[{index}]"
        _expect(image, dict, path, key)
        _integer(_get(image, "id", (int, float), path, key), path, f"{key}.id")
        _get(image, "file_name", str, path, key)
    return images


def read_posetrack_mot_ground_truth(seq_dir: str | Path) -> GroundTruth:
    """Read a ``posetrack_mot`` sequence folder (``image_info.json`` + ``gt/gt.txt``).

    Labelled frames: ``is_labeled`` of the image entries when they carry it, else the
    frames with at least one ground-truth box (``image_info.json`` lists every frame
    of the video, but only some are annotated; TrackLab's correction of the official
    evaluation, which otherwise counts every prediction on those frames as wrong).

    Raises:
        InputError: on a missing file, a malformed line or a malformed image entry.
    """
    seq_dir = Path(seq_dir)
    info_path = seq_dir / "image_info.json"
    images = _load_json(info_path, expect=list)
    num_frames = len(images)
    if not num_frames:
        raise InputError(f"{info_path}: expected one image entry per frame, got none")
    frame_of_image: dict[int, int] = {}
    flags: dict[int, bool] = {}
    ignore_regions: dict[int, list[np.ndarray]] = {}
    for index, image in enumerate(images):
        key = f"[{index}]"
        _expect(image, dict, info_path, key)
        frame_index = image.get("frame_index", index + 1)
        frame = _integer(frame_index, info_path, f"{key}.frame_index")
        if not 1 <= frame <= num_frames:
            raise InputError(
                f"{info_path}: {key}.frame_index: {frame} is outside 1..{num_frames} "
                "(one entry per frame expected)"
            )
        if "id" in image:
            image_id = _integer(image["id"], info_path, f"{key}.id")
            _unique(image_id, frame_of_image, info_path, f"{key}.id")
            frame_of_image[image_id] = frame
        if "is_labeled" in image:
            flags[frame] = bool(image["is_labeled"])
        regions = _ignore_regions(image, info_path, key)
        if regions:
            ignore_regions[frame] = regions
    gt_path = seq_dir / "gt" / "gt.txt"
    table = read_mot_table(gt_path, num_frames)
    tracks = Tracks(
        frames=table[:, 0].astype(np.int64),
        ids=table[:, 1].astype(np.int64),
        boxes=table[:, 2:6].copy(),
        scores=table[:, 6].copy(),
    )
    labeled = np.zeros(num_frames, bool)
    if flags:
        labeled[np.array(list(flags)) - 1] = list(flags.values())
    else:
        labeled[tracks.frames - 1] = True
    return GroundTruth(
        name=seq_dir.name,
        num_frames=num_frames,
        tracks=tracks,
        protocol="PoseTrack21",
        source=gt_path,
        labeled=labeled,
        ignore_regions=ignore_regions,
        image_frames=frame_of_image or None,
    )


def read_posetrack_predictions(path: str | Path, gt: GroundTruth) -> Tracks:
    """Read tracker results in the PoseTrack21 JSON layout, on the frames of ``gt``.

    Frames: when the ground truth names its images (PoseTrack layouts), each result
    image ``id`` must be one of them, as in the official evaluation; otherwise (a
    MOTChallenge sequence) ``frame_id`` is the frame number, from 1 like MOT text files.
    Keypoint confidences come from ``scores`` when present, else from the third value
    of each ``keypoints`` triple; detection confidence from ``score`` (default 1).

    Returns:
        Boxes with keypoints `(R, 17, 3)` (zeros for annotations without keypoints).

    Raises:
        InputError: on a missing file, a missing / malformed key or an unknown frame.
    """
    path = Path(path)
    document = _load_json(path, expect=dict)
    images = _get(document, "images", list, path, "")
    frame_of_image: dict[int, int] = {}
    for index, image in enumerate(images):
        key = f"images[{index}]"
        _expect(image, dict, path, key)
        image_id = _integer(_get(image, "id", (int, float), path, key), path, f"{key}.id")
        _unique(image_id, frame_of_image, path, f"{key}.id")
        if gt.image_frames is not None:
            if image_id not in gt.image_frames:
                raise InputError(
                    f"{path}: {key}.id: image {image_id} is not an image of the ground truth "
                    f"{gt.source}"
                )
            frame = gt.image_frames[image_id]
        else:
            frame_id = _get(image, "frame_id", (int, float), path, key)
            frame = _integer(frame_id, path, f"{key}.frame_id")
            if not 1 <= frame <= gt.num_frames:
                raise InputError(
                    f"{path}: {key}.frame_id: frame {frame} is outside the sequence "
                    f"(expected 1..{gt.num_frames})"
                )
        frame_of_image[image_id] = frame
    return _read_annotations(document, path, frame_of_image, with_scores=True)


def _read_annotations(
    document: dict, path: Path, frame_of_image: dict[int, int], with_scores: bool
) -> Tracks:
    """Boxes, ids and keypoints of ``document["annotations"]`` on the given frames."""
    annotations = _get(document, "annotations", list, path, "")
    frames, ids, boxes, scores, keypoints = [], [], [], [], []
    seen: dict[tuple[int, int], str] = {}
    for index, annotation in enumerate(annotations):
        key = f"annotations[{index}]"
        _expect(annotation, dict, path, key)
        image_id = _integer(
            _get(annotation, "image_id", (int, float), path, key), path, f"{key}.image_id"
        )
        if image_id not in frame_of_image:
            raise InputError(f"{path}: {key}.image_id: {image_id} is not listed in 'images'")
        track_id = _integer(
            _get(annotation, "track_id", (int, float), path, key), path, f"{key}.track_id"
        )
        if track_id < 0:
            raise InputError(f"{path}: {key}.track_id: expected a non-negative integer")
        frame = frame_of_image[image_id]
        earlier = seen.setdefault((frame, track_id), key)
        if earlier != key:
            raise InputError(
                f"{path}: {key}.track_id: track {track_id} appears twice in image {image_id} "
                f"(also {earlier})"
            )
        frames.append(frame)
        ids.append(track_id)
        boxes.append(_numbers(_get(annotation, "bbox", list, path, key), 4, path, f"{key}.bbox"))
        score = annotation.get("score", 1.0) if with_scores else 1.0
        scores.append(_numbers([score], 1, path, f"{key}.score")[0])
        keypoints.append(_keypoints(annotation, path, key, with_scores))
    has_keypoints = any(kp is not None for kp in keypoints)
    return Tracks(
        frames=np.asarray(frames, np.int64),
        ids=np.asarray(ids, np.int64),
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        scores=np.asarray(scores, np.float64),
        keypoints=np.stack([np.zeros((NUM_KEYPOINTS, 3)) if kp is None else kp for kp in keypoints])
        if has_keypoints
        else None,
    )


def _keypoints(annotation: dict, path: Path, key: str, with_scores: bool) -> np.ndarray | None:
    """`(17, 3)` x, y, score of one annotation, or None without ``keypoints``."""
    if "keypoints" not in annotation:
        return None
    flat = _numbers(annotation["keypoints"], 3 * NUM_KEYPOINTS, path, f"{key}.keypoints")
    points = np.asarray(flat, np.float64).reshape(NUM_KEYPOINTS, 3)
    if with_scores and annotation.get("scores"):
        points[:, 2] = _numbers(annotation["scores"], NUM_KEYPOINTS, path, f"{key}.scores")
    return points


def _ignore_regions(image: dict, path: Path, key: str) -> list[np.ndarray]:
    """Polygons `(M, 2)` of one image; a flat coordinate list is a single polygon."""
    xs, ys = image.get("ignore_regions_x") or [], image.get("ignore_regions_y") or []
    _expect(xs, list, path, f"{key}.ignore_regions_x")
    _expect(ys, list, path, f"{key}.ignore_regions_y")
    if xs and not isinstance(xs[0], list):
        xs, ys = [xs], [ys]
    if len(xs) != len(ys):
        raise InputError(
            f"{path}: {key}.ignore_regions_x/y: {len(xs)} x lists but {len(ys)} y lists"
        )
    polygons = []
    for region, (x, y) in enumerate(zip(xs, ys, strict=True)):
        where = f"{key}.ignore_regions_x/y[{region}]"
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
            raise InputError(f"{path}: {where}: expected two coordinate lists of equal length")
        if len(x) >= 3:
            points = _numbers(x, len(x), path, where) + _numbers(y, len(y), path, where)
            polygons.append(np.asarray(points, np.float64).reshape(2, -1).T)
    return polygons


def _unique(image_id: int, seen: dict[int, int], path: Path, where: str) -> None:
    if image_id in seen:
        raise InputError(f"{path}: {where}: image id {image_id} appears twice")
