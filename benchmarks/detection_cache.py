"""The per-frame detection cache of the benchmarks.

It runs detection, top-down pose and every appearance model ONCE per frame of a
(sequence, detection source) and stores the results in one ``.npz`` under
``benchmarks/cache/``, so every tracker of the quality benchmark sees identical
detections and a re-run skips the expensive part. It also stores the wall-clock seconds
of each stage, from which end-to-end frame rates are computed.

Shape letters: F frames, R detections over all frames, P embedding slots, D dimension.
"""

from __future__ import annotations

import functools
import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from common import (
    CACHE_DIR,
    SOURCES,
    YOLO_POSE_OPTIONS,
    YOLO_POSE_SOURCES,
    YOLOX_OPTIONS,
    YOLOX_WEIGHTS,
    auto_imgsz,
    machine_info,
)

from kpr_track.detections import Detections
from kpr_track.errors import ConfigError, InputError
from kpr_track.evaluation.mot import read_seqinfo
from kpr_track.integrity import NO_RECORD, discard, seal, write_sealed
from kpr_track.integrity import damage as damage_of
from kpr_track.io.video import sequence_frames
from kpr_track.keypoints import NUM_KEYPOINTS
from kpr_track.pipeline import StageTimer
from kpr_track.reid.calibration import DistanceCalibration

# What the cache can hold beyond boxes and scores.
FEATURES = ("keypoints", "kpr", "kpr-trained", "retail")
# Appearance slots in the cache: name -> the feature (and timed stage) that produces it.
APPEARANCE = {
    "parts": "kpr",
    "global": "kpr",
    "trained": "kpr-trained",
    "trained-global": "kpr-trained",
    "retail": "retail",
}
# The --reid model (and so the shipped calibration) behind each slot.
SLOT_REID = {
    "parts": "pose-guided",
    "global": "retail-0287",
    "trained": "kpr",
    "trained-global": "kpr-global",
    "retail": "retail-0287",
}
# KPR embeddings stored as float16 (see DetectionCache)
_HALF = ("parts", "global", "trained", "trained-global")


class Models:
    """The models the cache needs, built on first use and shared across sources.

    Args:
        threads: onnxruntime intra-op threads of the retail-0287 model (None: its default).
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._built: dict[str, object] = {}
        self._warm: set[str] = set()

    def _get(self, name: str, build: Callable[[], object]):
        if name not in self._built:
            self._built[name] = build()
        return self._built[name]

    @property
    def yolo_pose(self):
        """yolo11n-pose at imgsz 960, conf 0.05 (detector and top-down pose)."""
        from kpr_track.detectors import build_detector

        return self._get("yolo-pose", lambda: build_detector("yolo-pose", **YOLO_POSE_OPTIONS))

    @property
    def kpr(self):
        """Pose-guided KPR (retail-0287 trunk); its forward also gives ``global``."""
        from kpr_track.reid import build_reid

        return self._get("kpr", lambda: build_reid("pose-guided"))

    @property
    def kpr_trained(self):
        """KPR with the learned part attention trained by kpr-track (``--reid kpr``)."""
        from kpr_track.reid import build_reid

        return self._get("kpr-trained", lambda: build_reid("kpr"))

    @property
    def retail(self):
        """OMZ person-reidentification-retail-0287, untouched (``--reid retail-0287``)."""
        from kpr_track.reid import build_reid

        return self._get("retail", lambda: build_reid("retail-0287"))

    def warm_up(self, frame: np.ndarray, stages: dict[str, Callable[[np.ndarray], object]]) -> None:
        """Run each named stage once, untimed, the first time that name is seen (first-call
        set-up costs would otherwise weigh on short sequences)."""
        for name, stage in stages.items():
            if name not in self._warm:
                stage(frame)
                self._warm.add(name)

    def detector(self, source: str, seq_dir: Path):
        """The detector of a source for one sequence."""
        from kpr_track.detectors import build_detector

        if source == "det":
            return build_detector(f"mot:{seq_dir / 'det' / 'det.txt'}")
        if source == "yolox":
            return self._get(
                "yolox", lambda: build_detector(f"yolox:{YOLOX_WEIGHTS}", **YOLOX_OPTIONS)
            )
        if source == "yolo-pose":
            return self.yolo_pose
        if source == "yolo-pose-auto":
            size = auto_imgsz(seq_dir)
            options = {**YOLO_POSE_OPTIONS, "imgsz": size}
            return self._get(f"yolo-pose-{size}", lambda: build_detector("yolo-pose", **options))
        raise ConfigError(f"unknown detection source {source!r}; expected one of {list(SOURCES)}")


@dataclass
class DetectionCache:
    """Every frame's detections of one (sequence, source), with appearance embeddings.

    Attributes:
        frame_ids: `(F,)` int64 1-based frame numbers, in processing order.
        offsets: `(F + 1,)` int64; frame ``i`` owns rows ``offsets[i]:offsets[i + 1]``.
        boxes: `(R, 4)` float32 xyxy px. scores: `(R,)` float32 in [0, 1].
        keypoints: `(R, 17, 3)` float32 (zeros when ``"keypoints"`` was not computed).
        appearance: slot name (a key of :data:`APPEARANCE`) -> ``(embeddings (R, P, D),
            visibility (R, P))``. The KPR slots (``parts``, ``global``, ``trained``) are
            stored as float16 (L2-normalised vectors: distance error about 1e-3, a quarter
            of the disk of the 1280-d ImageNet-trunk embeddings); ``parts`` and
            ``trained`` have P = 1 + K (foreground + parts), the others P = 1.
        features: which of :data:`FEATURES` were computed.
        seconds: stage -> wall-clock seconds over all frames (``decode``, ``detect``,
            ``pose`` and one per appearance feature).
        meta: what produced the cache (source, options, machine).
    """

    frame_ids: np.ndarray
    offsets: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    appearance: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    features: frozenset[str] = frozenset()
    seconds: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_ids)

    def detections(self, index: int, appearance: str | None = None) -> Detections:
        """Detections of the ``index``-th frame, carrying the ``appearance`` slot if given."""
        rows = slice(int(self.offsets[index]), int(self.offsets[index + 1]))
        found = Detections(self.boxes[rows], self.scores[rows], self.keypoints[rows])
        if appearance is None:
            return found
        embeddings, visibility = self.appearance[appearance]
        return found.with_appearance(embeddings[rows].astype(np.float32), visibility[rows])

    def save(self, path: Path) -> None:
        """Write one ``.npz`` atomically, with its size and sha256 in ``<path>.sha256``
        (:func:`kpr_track.integrity.write_sealed`)."""
        arrays = {
            "frame_ids": self.frame_ids,
            "offsets": self.offsets,
            "boxes": self.boxes,
            "scores": self.scores,
            "keypoints": self.keypoints,
        }
        for name, (embeddings, visibility) in self.appearance.items():
            arrays[f"{name}_embeddings"] = embeddings.astype(
                np.float16 if name in _HALF else np.float32
            )
            arrays[f"{name}_visibility"] = visibility.astype(np.float32)
        header = {"features": sorted(self.features), "seconds": self.seconds, "meta": self.meta}
        buffer = io.BytesIO()
        np.savez(buffer, header=np.array(json.dumps(header)), **arrays)
        write_sealed(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> DetectionCache:
        """Read a cache written by :meth:`save`.

        Raises:
            InputError: if the file is missing or not a detection cache.
        """
        try:
            with np.load(path) as stored:
                header = json.loads(str(stored["header"]))
                arrays = {key: stored[key] for key in stored.files if key != "header"}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise InputError(f"{path}: not a detection cache ({error})") from None
        names = {key.rsplit("_", 1)[0] for key in arrays if key.endswith("_embeddings")}
        return cls(
            **{
                key: arrays[key] for key in ("frame_ids", "offsets", "boxes", "scores", "keypoints")
            },
            appearance={n: (arrays[f"{n}_embeddings"], arrays[f"{n}_visibility"]) for n in names},
            features=frozenset(header["features"]),
            seconds=header["seconds"],
            meta=header["meta"],
        )


_WORKER_MODELS: dict[int | None, Models] = {}
# One person's box (and no keypoints) for the untimed first call of each stage.
_WARM_UP_BOX = Detections(
    np.array([[10, 10, 60, 160]], np.float32), np.ones(1, np.float32), np.zeros((1, 17, 3))
)


def build_job(
    seq_dir: Path,
    source: str,
    features: set[str],
    cache_dir: Path,
    max_frames: int | None,
    rebuild: str | None,
    threads: int | None,
) -> Path:
    """Make sure one cache exists (for a worker process); returns its path.

    ``rebuild``: see :func:`load_or_build`.

    ``threads`` sets torch's (and onnxruntime's) thread count in this process: on a
    shared 2-core machine one thread per process avoids OpenMP spin-waiting, which made
    2-thread inference up to 4x slower than 1-thread inference here under load.
    """
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    models = _WORKER_MODELS.setdefault(threads, Models(threads))
    log = functools.partial(print, flush=True)
    load_or_build(
        seq_dir,
        source,
        features,
        models,
        cache_dir=cache_dir,
        max_frames=max_frames,
        rebuild=rebuild,
        log=log,
    )
    return cache_path(cache_dir, seq_dir, source, max_frames)


def cache_path(cache_dir: Path, seq_dir: Path, source: str, max_frames: int | None) -> Path:
    """``<cache_dir>/<sequence>__<source>[__first<N>].npz``."""
    suffix = "" if max_frames is None else f"__first{max_frames}"
    return cache_dir / f"{seq_dir.name}__{source}{suffix}.npz"


def load_or_build(
    seq_dir: Path,
    source: str,
    features: set[str],
    models: Models,
    *,
    cache_dir: Path = CACHE_DIR,
    max_frames: int | None = None,
    rebuild: str | None = None,
    log: Callable[[str], None] = print,
) -> DetectionCache:
    """The cache of ``(seq_dir, source)`` holding at least ``features``; built if needed.

    A stored cache lacking some of ``features`` is rebuilt with the union of both sets
    (detection is deterministic, so the boxes stay the same). ``rebuild="all"`` builds it
    anew; ``"appearance"`` recomputes a stored cache's appearance features on its stored
    detections (:func:`refresh_appearance`: after a change of an appearance model).
    """
    path = cache_path(cache_dir, seq_dir, source, max_frames)
    stored = None if rebuild == "all" or not path.is_file() else _intact(path, log)
    if stored is not None and rebuild == "appearance":
        stored = refresh_appearance(stored, seq_dir, models, max_frames=max_frames, log=log)
        stored.save(path)
        log(f"[cache] wrote {path} (appearance recomputed)")
    if stored is not None and set(features) <= stored.features:
        return stored
    wanted = set(features) | (set(stored.features) if stored is not None else set())
    cache = build_cache(seq_dir, source, wanted, models, max_frames=max_frames, log=log)
    cache.save(path)
    log(f"[cache] wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return cache


def _intact(path: Path, log: Callable[[str], None]) -> DetectionCache | None:
    """The stored cache, or None (after one line on ``log``, file removed) when it does
    not match its size / sha256 record or does not load. A cache from before the records
    (no ``.sha256``) is loaded in full, and sealed when it loads."""
    damage = damage_of(path)
    if damage in (None, NO_RECORD):
        try:
            stored = DetectionCache.load(path)
        except InputError as error:
            damage = str(error).removeprefix(f"{path}: ")
        else:
            if damage == NO_RECORD:
                seal(path)
            return stored
    log(f"[cache] {path} is damaged ({damage}): removed, building it again")
    discard(path)
    return None


def build_cache(
    seq_dir: Path,
    source: str,
    features: set[str],
    models: Models,
    *,
    max_frames: int | None = None,
    log: Callable[[str], None] = print,
) -> DetectionCache:
    """Run detection, top-down pose and the appearance models over a sequence once.

    Args:
        seq_dir: MOTChallenge sequence folder.
        source: a key of :data:`SOURCES`.
        features: subset of :data:`FEATURES`. ``kpr`` fills the ``parts`` and ``global``
            slots from one forward pass of the pose-guided KPR model; ``kpr-trained`` the
            ``trained`` slot (learned attention, ``build_reid("kpr")``); ``retail`` the
            ``retail`` slot; ``keypoints`` runs top-down pose for sources without them.
        models: shared models.
        max_frames: only the first frames (tests).
        log: progress messages.
    """
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ConfigError(f"unknown cache feature(s) {sorted(unknown)}; expected {FEATURES}")
    detector = models.detector(source, seq_dir)
    top_down = "keypoints" in features and source not in YOLO_POSE_SOURCES
    stages = {f"detect:{source}": lambda image: detector.detect(image, 1)}
    if top_down:
        stages["pose"] = lambda image: models.yolo_pose.pose_on_boxes(image, _WARM_UP_BOX.boxes)
    stages.update(_appearance_stages(features, models))
    timer = StageTimer()
    frame_ids, counts, per_frame = [], [], []
    slots: dict[str, tuple[list, list]] = {}
    total = int(read_seqinfo(seq_dir)["seqLength"]) if max_frames is None else max_frames
    start = time.perf_counter()
    frames = sequence_frames(seq_dir, max_frames)
    while True:
        with timer("decode"):
            item = next(frames, None)
        if item is None:
            break
        frame_id, frame = item
        if not frame_ids:
            models.warm_up(frame, stages)
        with timer("detect"):
            found = detector.detect(frame, frame_id)
        if top_down and len(found):
            with timer("pose"):
                found = replace(found, keypoints=models.yolo_pose.pose_on_boxes(frame, found.boxes))
        _append_slots(slots, _appearance(frame, found, features, models, timer))
        frame_ids.append(frame_id)
        counts.append(len(found))
        per_frame.append(found)
        if len(frame_ids) % 100 == 0:
            rate = (time.perf_counter() - start) / len(frame_ids)
            log(f"[cache] {seq_dir.name}/{source}: {len(frame_ids)} frames, {rate:.2f} s/frame")
    if not frame_ids:
        raise InputError(f"{seq_dir}: no frames found")
    return DetectionCache(
        frame_ids=np.asarray(frame_ids, np.int64),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        boxes=_stack([d.boxes for d in per_frame], (4,)),
        scores=_stack([d.scores for d in per_frame], ()),
        keypoints=_stack([d.keypoints for d in per_frame], (NUM_KEYPOINTS, 3)),
        appearance=_concatenated(slots),
        features=frozenset(features),
        seconds=dict(timer.seconds),
        meta={
            "sequence": seq_dir.name,
            "source": source,
            "frames_total": total,
            **machine_info(),
        },
    )


def slot_calibration(slot: str) -> DistanceCalibration:
    """The calibration the ``--reid`` model behind a cache slot ships (in its weights or
    in ``kpr_track/assets/calibrations.json``, fitted on the training identities of MOT17-02,
    MOT20-01 and MOT16-04-first50)."""
    from kpr_track.reid import reid_calibration

    return reid_calibration(SLOT_REID[slot])


def refresh_appearance(
    cache: DetectionCache,
    seq_dir: Path,
    models: Models,
    *,
    max_frames: int | None = None,
    log: Callable[[str], None] = print,
) -> DetectionCache:
    """``cache`` with its appearance features (``kpr``, ``kpr-trained``, ``retail``)
    recomputed by today's models on its stored detections and keypoints, their stage
    times replaced; detection and pose are kept (they do not depend on those models).

    Raises:
        InputError: the sequence's frames are not the cache's.
    """
    features = set(cache.features) & set(APPEARANCE.values())
    timer = StageTimer()
    slots: dict[str, tuple[list, list]] = {}
    frames = sequence_frames(seq_dir, max_frames)
    for index, (frame_id, frame) in enumerate(frames):
        if index >= len(cache) or frame_id != cache.frame_ids[index]:
            expected = cache.frame_ids[index] if index < len(cache) else "none"
            raise InputError(
                f"{seq_dir}: read frame {frame_id} where its cache has frame {expected}"
            )
        if index == 0:
            models.warm_up(frame, _appearance_stages(features, models))
        found = cache.detections(index)
        _append_slots(slots, _appearance(frame, found, features, models, timer))
    log(f"[cache] {seq_dir.name}: {sorted(features)} recomputed on {len(cache)} frames")
    return replace(
        cache,
        appearance={**cache.appearance, **_concatenated(slots)},
        seconds={**cache.seconds, **timer.seconds},
        meta={**cache.meta, "appearance_recomputed": machine_info()},
    )


def _append_slots(slots: dict[str, tuple[list, list]], frame_slots: dict) -> None:
    """Append one frame's ``(embeddings, visibility)`` of each slot to ``slots``' lists."""
    for name, (embeddings, visibility) in frame_slots.items():
        lists = slots.setdefault(name, ([], []))
        lists[0].append(embeddings)
        lists[1].append(visibility)


def _concatenated(slots: dict[str, tuple[list, list]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each slot's frames joined: ``(embeddings (R, P, D), visibility (R, P))``."""
    return {name: (np.concatenate(e), np.concatenate(v)) for name, (e, v) in slots.items()}


def _appearance_stages(features, models: Models) -> dict[str, Callable[[np.ndarray], object]]:
    """The appearance stages of ``features`` on a dummy box, for :meth:`Models.warm_up`."""
    box = _WARM_UP_BOX
    stages = {}
    if "kpr" in features:
        stages["kpr"] = lambda image: models.kpr.embed(image, box)
    if "kpr-trained" in features:
        stages["kpr-trained"] = lambda image: models.kpr_trained.embed(image, box)
    if "retail" in features:
        stages["retail"] = lambda image: models.retail(image, box)
    return stages


def _appearance(frame, found: Detections, features, models: Models, timer: StageTimer) -> dict:
    """Appearance slots of one frame's detections (empty arrays keep the right shapes)."""
    out = {}
    if "kpr" in features:
        with timer("kpr"):
            result = models.kpr.embed(frame, found)
        half = result.embeddings.numpy().astype(np.float16)  # see DetectionCache.appearance
        out["parts"] = (half, result.visibility.numpy())
        out["global"] = (
            result.global_embedding.numpy()[:, None].astype(np.float16),
            np.ones((len(found), 1), np.float32),
        )
    if "kpr-trained" in features:
        with timer("kpr-trained"):
            result = models.kpr_trained.embed(frame, found)
        out["trained"] = (result.embeddings.numpy().astype(np.float16), result.visibility.numpy())
        out["trained-global"] = (
            result.global_embedding.numpy()[:, None].astype(np.float16),
            np.ones((len(found), 1), np.float32),
        )
    if "retail" in features:
        with timer("retail"):
            result = models.retail.embed(frame, found)
        out["retail"] = (
            result.global_embedding.numpy()[:, None],
            np.ones((len(found), 1), np.float32),
        )
    return out


def _stack(arrays: list[np.ndarray], tail: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([np.asarray(a, np.float32).reshape(-1, *tail) for a in arrays])
