"""Detections of labelled sequences computed once and cached for ``kpr-track tune``.

A tuning study runs the tracker hundreds of times on the same sequences; only the
tracker's settings change. So every frame's detections (boxes, scores, keypoints, and
embeddings when the tracker reads appearance) and the camera warp are computed once per
(sequence, detector settings) and stored as one ``.npz`` in the cache folder; a trial
reads them back without decoding a frame.

Shape letters: F frames, R detections over all frames, P embedding slots, D dimension.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .datasets.sequences import SequenceSpec
from .detections import Detections
from .errors import InputError, OutputError
from .keypoints import NUM_KEYPOINTS

_VERSION = 1  # bump when the stored arrays change meaning


@dataclass
class CachedSequence:
    """One sequence's stored detections and camera warps.

    Attributes:
        spec: the sequence (its ground truth is ``spec.gt``).
        frame_rate: frames per second of the source.
        frame_ids: `(F,)` int64 1-based frame numbers.
        counts: `(F,)` int64 detections per frame.
        boxes: `(R, 4)` float32 xyxy px.
        scores: `(R,)` float32 in [0, 1].
        keypoints: `(R, 17, 3)` float32 ``(x px, y px, conf)``.
        warps: `(F, 2, 3)` float64 camera warp from the previous frame.
        image_size: ``(width, height)`` px of the frames (the border test of linking).
        embeddings: `(R, P, D)` float16 or None.
        visibility: `(R, P)` float16 or None.
        images: frame number -> PoseTrack image record (PoseTrack21 sequences), or None.
    """

    spec: SequenceSpec
    frame_rate: float
    frame_ids: np.ndarray
    counts: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    warps: np.ndarray
    image_size: tuple[int, int]
    embeddings: np.ndarray | None = None
    visibility: np.ndarray | None = None
    images: dict | None = None

    @cached_property
    def _ends(self) -> np.ndarray:
        return np.cumsum(self.counts)

    def rows(self, index: int) -> slice:
        """The rows (of ``boxes``, ``scores``, ...) of the ``index``-th frame."""
        end = int(self._ends[index])
        return slice(end - int(self.counts[index]), end)

    def frames(self):
        """Yield ``(frame_id, Detections, warp (2, 3))`` in frame order."""
        for index, frame_id in enumerate(self.frame_ids.tolist()):
            rows = self.rows(index)
            detections = Detections(
                boxes=self.boxes[rows],
                scores=self.scores[rows],
                keypoints=self.keypoints[rows],
                embeddings=None
                if self.embeddings is None
                else self.embeddings[rows].astype(np.float32),
                visibility=None
                if self.visibility is None
                else self.visibility[rows].astype(np.float32),
            )
            yield frame_id, detections, self.warps[index]


def cache_key(spec: SequenceSpec, settings: dict) -> str:
    """File stem of a sequence's cache: its name and a hash of the detection settings."""
    from .trackers.camera_motion import ESTIMATOR  # the stored warps depend on it

    key = {"source": str(spec.source), **settings, "v": _VERSION, "camera": ESTIMATOR}
    text = json.dumps(key, sort_keys=True)
    return f"{spec.name}__{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def load_or_compute(
    spec: SequenceSpec,
    settings: dict,
    build_stages,
    cache_dir: Path,
    *,
    progress: bool = True,
) -> CachedSequence:
    """The cached detections of ``spec`` under ``settings``, computed on first use.

    Args:
        spec: the sequence.
        settings: what the detections depend on (detector spec, imgsz, conf, reid,
            max_frames): part of the cache key, stored in the file.
        build_stages: ``(frame_rate, (width, height)) -> (pipeline, uses_appearance)``,
            building the detector and appearance stages for this sequence.
        cache_dir: folder of the ``.npz`` files.
        progress: show a progress bar while computing.

    Raises:
        InputError: unreadable frames or detections.
        OutputError: the cache cannot be written.
    """
    from .evaluation.mot import read_seqinfo
    from .io.frames import open_frames
    from .trackers.camera_motion import CameraMotion

    path = Path(cache_dir) / f"{cache_key(spec, settings)}.npz"
    reader = open_frames(spec.source, spec.posetrack_json, settings.get("max_frames"))
    images = getattr(reader, "images", None)
    size = (reader.info.width, reader.info.height)
    if path.is_file():
        return _load(path, spec, images, size)
    frame_rate = reader.info.fps
    if spec.seq_dir is not None:  # seqinfo.ini's rate, as the evaluation reads it
        frame_rate = float(read_seqinfo(spec.seq_dir).get("frameRate", frame_rate))
    pipeline, appearance = build_stages(frame_rate, size)
    camera = CameraMotion()
    frame_ids, found, warps = [], [], []
    bar = tqdm(total=len(reader) or None, unit="frame", disable=not progress, desc=spec.name)
    for frame in reader:
        detections = pipeline.detect(frame, reader.frame_id)
        if appearance and pipeline.appearance is not None:
            targets = detections.scores >= pipeline.tracker.appearance_min_score
            detections = pipeline.appearance(frame, detections, targets)
        frame_ids.append(reader.frame_id)
        found.append(detections)
        warps.append(camera(frame))
        bar.update()
    bar.close()
    if not frame_ids:
        raise InputError(f"{spec.source}: no frames to tune on")
    arrays = _stack(found, frame_ids, warps)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, frame_rate=frame_rate, settings=json.dumps(settings), **arrays)
        os.replace(tmp, path)
    except OSError as error:
        raise OutputError(f"{path}: cannot write the tuning cache ({error})") from None
    return _load(path, spec, images, size)


def _stack(found: list[Detections], frame_ids: list[int], warps: list[np.ndarray]) -> dict:
    arrays = {
        "frame_ids": np.asarray(frame_ids, np.int64),
        "counts": np.array([len(d) for d in found], np.int64),
        "boxes": np.concatenate([d.boxes for d in found]).reshape(-1, 4),
        "scores": np.concatenate([d.scores for d in found]),
        "keypoints": np.concatenate([d.keypoints for d in found]).reshape(-1, NUM_KEYPOINTS, 3),
        "warps": np.stack(warps).astype(np.float64),
    }
    with_embeddings = [d for d in found if d.embeddings is not None]
    if with_embeddings:
        slots = with_embeddings[0].embeddings.shape[1:]
        arrays["embeddings"] = np.concatenate(
            [
                d.embeddings if d.embeddings is not None else np.zeros((len(d), *slots))
                for d in found
            ]
        ).astype(np.float16)
        arrays["visibility"] = np.concatenate(
            [
                d.visibility if d.visibility is not None else np.zeros((len(d), slots[0]))
                for d in found
            ]
        ).astype(np.float16)
    return arrays


def _load(
    path: Path, spec: SequenceSpec, images: dict | None, image_size: tuple[int, int]
) -> CachedSequence:
    try:
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: unreadable tuning cache ({error}); delete it") from None
    return CachedSequence(
        spec=spec,
        frame_rate=float(arrays["frame_rate"]),
        frame_ids=arrays["frame_ids"],
        counts=arrays["counts"],
        boxes=arrays["boxes"],
        scores=arrays["scores"],
        keypoints=arrays["keypoints"],
        warps=arrays["warps"],
        embeddings=arrays.get("embeddings"),
        visibility=arrays.get("visibility"),
        images=images,
        image_size=image_size,
    )


def thinned(sequence: CachedSequence, step: int, folder: Path) -> CachedSequence:
    """Every ``step``-th frame of a MOTChallenge ``sequence`` as a sequence of its own, at
    ``frame_rate / step``: what a camera at a lower frame rate sees (e.g. a 30 fps
    sequence at every 4th frame for 7.5 fps scenes).

    Frames are renumbered 1, 2, ...; each kept frame's camera warp is the composition of
    the warps since the previous kept frame; the ground truth is thinned the same way into
    ``folder/<name>-every<step>/`` (``gt/gt.txt`` and ``seqinfo.ini`` with the new length
    and frame rate), the thinned spec's ``gt``. A sequence cached short of its ground
    truth (annotated frames after its last cached one: ``--max-frames``) gets its ground
    truth cut at its last cached frame as well (``<name>[-every<step>]-first<N>``), at any
    step: frames never tracked are not scored as misses. Without MOTChallenge ground truth
    (PoseTrack21) a step of 1 returns the sequence unchanged.

    Raises:
        InputError: ``step`` < 1, or the sequence has no MOTChallenge ground truth folder.
        OutputError: the thinned ground truth cannot be written.
    """
    import configparser

    if step < 1:
        raise InputError(f"frame step must be >= 1, got {step}")
    spec = sequence.spec
    has_mot_gt = spec.gt is not None and (Path(spec.gt) / "gt" / "gt.txt").is_file()
    if step > 1 and not has_mot_gt:
        raise InputError(f"{spec.name}: a frame step needs MOTChallenge ground truth (gt/gt.txt)")
    if not has_mot_gt:
        return sequence
    source_gt = Path(spec.gt)
    annotated = []  # (frame number, rest of the line)
    for line in (source_gt / "gt" / "gt.txt").read_text().splitlines():
        frame, sep, rest = line.partition(",")
        if sep and frame.strip().isdigit():
            annotated.append((int(frame), rest))
    last = int(sequence.frame_ids.max())
    cut = any(number > last for number, _ in annotated)
    if step == 1 and not cut:
        return sequence
    info = configparser.ConfigParser()
    info.optionxform = str  # keep MOTChallenge's camelCase keys
    info.read(source_gt / "seqinfo.ini")
    if "Sequence" not in info:
        raise InputError(f"{source_gt / 'seqinfo.ini'}: no [Sequence] section")
    length = int(info["Sequence"].get("seqLength", last))
    length = min(length, last) if cut else length
    name = spec.name + (f"-every{step}" if step > 1 else "") + (f"-first{last}" if cut else "")
    target = Path(folder) / name
    kept_lines = [
        f"{(number - 1) // step + 1},{rest}"
        for number, rest in annotated
        if 1 <= number <= length and (number - 1) % step == 0
    ]
    rate = f"{sequence.frame_rate / step:g}"
    info["Sequence"].update(name=name, seqLength=str((length - 1) // step + 1), frameRate=rate)
    try:
        (target / "gt").mkdir(parents=True, exist_ok=True)
        (target / "gt" / "gt.txt").write_text("\n".join(kept_lines) + "\n")
        with open(target / "seqinfo.ini", "w") as handle:
            info.write(handle, space_around_delimiters=False)
    except OSError as error:
        raise OutputError(f"{target}: cannot write the thinned ground truth ({error})") from None
    keep = np.flatnonzero((sequence.frame_ids - 1) % step == 0)
    rows = np.r_[tuple(sequence.rows(int(i)) for i in keep)].astype(np.int64)
    return CachedSequence(
        spec=replace(spec, name=name, result_name=f"{name}.txt", gt=target, seq_dir=target),
        frame_rate=sequence.frame_rate / step,
        frame_ids=(sequence.frame_ids[keep] - 1) // step + 1,
        counts=sequence.counts[keep],
        boxes=sequence.boxes[rows],
        scores=sequence.scores[rows],
        keypoints=sequence.keypoints[rows],
        warps=np.stack([_composed(sequence.warps, i, step) for i in keep]),
        embeddings=None if sequence.embeddings is None else sequence.embeddings[rows],
        visibility=None if sequence.visibility is None else sequence.visibility[rows],
        image_size=sequence.image_size,
    )


def _composed(warps: np.ndarray, index: int, step: int) -> np.ndarray:
    """`(2, 3)` warp from frame ``index - step`` to ``index`` (identity for the first)."""
    total = np.eye(3)
    for i in range(max(index - step + 1, 1), index + 1):
        total = np.vstack([warps[i], [0.0, 0.0, 1.0]]) @ total
    return total[:2]
