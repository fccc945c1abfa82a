"""Offline linking: join tracklets of one person that the online pass split.

After online tracking of a file the whole sequence is known, so a person who left the
frame, was hidden or re-entered can get their id back. Per pair of tracklets ``(a, b)``
where ``a`` ends before ``b`` starts (no temporal overlap):

a. time gate: ``0 < gap <= max_gap`` seconds between ``a``'s last and ``b``'s first frame;
b. appearance evidence: for every view of ``a``'s gallery against every view of ``b``'s
   (the visible slots of each tracklet's best views, :class:`TrackletCollector`), the
   per-slot distances (:func:`~kpr_track.reid.distance.slot_distances`) read as one
   same-person probability by the appearance model's calibrated slot fusion
   (:meth:`~kpr_track.reid.calibration.DistanceCalibration.fused_probability`, the
   function the tracker and ``eval-reid`` use), summarised by the median over view pairs;
   a slot that is not visible in both views of a pair carries no weight, and a pair of
   tracklets sharing no visible slot at all has no evidence and is never joined. The calibration
   assumes balanced pairs; the probability used is its posterior under a uniform prior
   over the candidates competing for the end and the start (:func:`_candidate_posterior`),
   or under ``border_prior`` when that is lower and ``a`` left at the frame border and
   ``b`` entered at a border (whoever enters may be someone never seen);
c. motion plausibility: the person may move at most ``min_reach + max_speed * gap`` box
   heights while unseen (``border_reach`` times that when ``a`` left at the frame border
   and ``b`` entered at a border: the path outside the view is not observed). The
   distance is the smallest of the raw one between ``a``'s last and ``b``'s first box
   centre and the two constant-velocity extrapolations (``a`` forward, ``b`` backward,
   each over at most ``extrapolate`` seconds), so a person re-found behind an occluder on
   their course or near where they were lost is plausible; the height may change by at
   most ``max_height_ratio``;
d. cost ``(1 - p_same) + motion_weight * distance / reach``, infeasible when a gate fails
   or ``p_same < min_probability``; one global minimum-cost assignment of tracklet ends to
   tracklet starts (:func:`~.assignment.linear_assignment`, ``lap``), so a tracklet's end
   joins at most one later start and each start at most one earlier end; chains
   ``a -> b -> c`` take the id of their first tracklet.

The idea of linking tracklets globally on appearance and motion is StrongSORT++'s
AFLink (Du et al., "StrongSORT: Make DeepSORT Great Again", IEEE TMM 2023, Sec. 4.1),
here with calibrated part-based evidence instead of a learned motion-only classifier.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kpr_track.boxes import box_iou
from kpr_track.detections import Detections
from kpr_track.errors import ConfigError, InputError

from .assignment import linear_assignment

if TYPE_CHECKING:
    from kpr_track.reid.calibration import DistanceCalibration


@dataclass(frozen=True)
class LinkConfig:
    """Settings of :func:`link_tracklets` and of the gap filling after it, with units.

    The ``link`` section of a tracker preset (``configs/trackers/kpr.yaml``).

    Raises:
        ConfigError: at construction, naming the field, when a value is out of range.
    """

    enabled: bool = False  # link file inputs after the online pass (--link / --no-link)
    max_gap: float = 10.0  # seconds: longest time between a tracklet's end and the next start
    min_probability: float = 0.4  # [0,1] calibrated p_same a join needs at least
    max_speed: float = 1.0  # box heights per second the unseen person may move
    min_reach: float = 1.0  # box heights reachable in any gap (detector jitter, turns)
    border_reach: float = 2.0  # >= 1: reach factor for a border exit + border re-entry
    border_prior: float = 1.0  # [0,1] prior that a border entry is a border exit come back
    border_margin: float = 0.02  # fraction of the image size: a box this close touches it
    extrapolate: float = 1.0  # seconds of constant-velocity extrapolation at most
    max_height_ratio: float = 2.0  # >= 1: largest ratio of the two box heights
    motion_weight: float = 0.3  # cost units in [0,1] per unit of distance / reach
    gallery_size: int = 10  # >= 1: views kept per tracklet (best score x least overlap)
    visibility_threshold: float = 0.5  # [0,1] a slot counts as seen above it
    fill_gap: float = 2.0  # seconds: gaps up to this long are interpolated (0 = none)
    smooth: float = 0.0  # seconds: std of the Gaussian smoothing of linked boxes (0 = none)

    def __post_init__(self) -> None:
        checks = {
            "max_gap": (self.max_gap >= 0, ">= 0 seconds"),
            "min_probability": (0 <= self.min_probability <= 1, "in [0, 1]"),
            "max_speed": (self.max_speed >= 0, ">= 0 box heights per second"),
            "min_reach": (self.min_reach > 0, "> 0 box heights"),
            "border_reach": (self.border_reach >= 1, ">= 1"),
            "border_prior": (0 <= self.border_prior <= 1, "in [0, 1]"),
            "border_margin": (0 <= self.border_margin < 0.5, "in [0, 0.5)"),
            "extrapolate": (self.extrapolate >= 0, ">= 0 seconds"),
            "max_height_ratio": (self.max_height_ratio >= 1, ">= 1"),
            "motion_weight": (0 <= self.motion_weight <= 1, "in [0, 1]"),
            "gallery_size": (self.gallery_size >= 1, ">= 1 view"),
            "visibility_threshold": (0 <= self.visibility_threshold <= 1, "in [0, 1]"),
            "fill_gap": (self.fill_gap >= 0, ">= 0 seconds"),
            "smooth": (self.smooth >= 0, ">= 0 seconds"),
        }
        for name, (ok, expected) in checks.items():
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(f"link setting {name!r} must be {expected}, got {value!r}")


def load_link_config(name_or_yaml: str) -> LinkConfig:
    """The ``link`` section of a tracker preset (shipped name or YAML file); the
    defaults of :class:`LinkConfig` where the preset has none.

    Raises:
        ConfigError: naming the file, on an unknown preset, a ``link`` value that is not
            a mapping, an unknown key or an out-of-range value.
    """
    from kpr_track.config import from_mapping, load_yaml, preset_path

    path = preset_path("trackers", str(name_or_yaml))
    section = load_yaml(path).get("link", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: key 'link' must be a mapping of link settings")
    try:
        return from_mapping(LinkConfig, section, f"{path} [link]")
    except ConfigError as error:
        message = str(error)
        raise ConfigError(
            message if message.startswith(str(path)) else f"{path} [link]: {message}"
        ) from None


@dataclass
class Tracklet:
    """What linking needs of one online track.

    Attributes:
        track_id: the online id (> 0).
        first_frame: its first frame number; ``last_frame``: its last (>= first).
        first_box: `(4,)` float xyxy px at ``first_frame``; ``last_box`` at ``last_frame``.
        first_velocity: `(2,)` float box-centre velocity in px per frame over its first
            frames; ``last_velocity`` over its last frames (zeros when unknown).
        embeddings: `(G, P, D)` float L2-normalised embeddings of its best views, or None.
        visibility: `(G, P)` float in [0, 1], the slots seen in each view, or None.
        first_at_border: its first box touches the image border; ``last_at_border``: its
            last box does.
    """

    track_id: int
    first_frame: int
    last_frame: int
    first_box: np.ndarray
    last_box: np.ndarray
    first_velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    last_velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    embeddings: np.ndarray | None = None
    visibility: np.ndarray | None = None
    first_at_border: bool = False
    last_at_border: bool = False


def link_tracklets(
    tracklets: list[Tracklet],
    calibration: DistanceCalibration,
    frame_rate: float,
    config: LinkConfig = LinkConfig(),
) -> dict[int, int]:
    """Join tracklets of one person; see the module docstring for the rule.

    Args:
        tracklets: the online tracks (distinct ``track_id``).
        calibration: the appearance model's distance calibration.
        frame_rate: frames per second of the sequence (> 0).
        config: the settings.

    Returns:
        Online id -> linked id for every tracklet (the id of the first tracklet of its
        chain; unchanged for tracklets that were not joined).

    Raises:
        InputError: duplicate ids, or galleries of different slot / dimension shapes.
        ConfigError: ``frame_rate`` not > 0.
    """
    if not frame_rate > 0:
        raise ConfigError(f"link frame_rate must be > 0 frames per second, got {frame_rate}")
    ids = [t.track_id for t in tracklets]
    if len(set(ids)) != len(ids):
        raise InputError("link_tracklets: tracklet ids must be distinct")
    cost = link_costs(tracklets, calibration, frame_rate, config)
    max_cost = 1.0 - config.min_probability + config.motion_weight
    matches, _, _ = linear_assignment(cost, max_cost)
    successor = {int(a): int(b) for a, b in matches}
    has_predecessor = set(successor.values())
    linked = {}
    for head in range(len(tracklets)):
        if head in has_predecessor:
            continue
        node = head
        while True:
            linked[tracklets[node].track_id] = tracklets[head].track_id
            if node not in successor:
                break
            node = successor[node]
    return linked


def link_costs(
    tracklets: list[Tracklet],
    calibration: DistanceCalibration,
    frame_rate: float,
    config: LinkConfig,
) -> np.ndarray:
    """`(T, T)` float64 cost of joining tracklet ``i``'s end to tracklet ``j``'s start
    (module docstring, steps a-d), ``inf`` where infeasible."""
    from kpr_track.reid.distance import slot_distances

    n = len(tracklets)
    cost = np.full((n, n), np.inf)
    first = np.array([t.first_frame for t in tracklets], np.float64)
    last = np.array([t.last_frame for t in tracklets], np.float64)
    gap = (first[None, :] - last[:, None]) / frame_rate  # (T, T) seconds, a -> b
    rows, cols = np.nonzero((gap > 0) & (gap <= config.max_gap))
    left = np.array([t.last_at_border for t in tracklets], bool)
    entered = np.array([t.first_at_border for t in tracklets], bool)
    exit_entry = left[:, None] & entered[None, :]
    motion = np.array(
        [
            _motion(tracklets[a], tracklets[b], gap[a, b], exit_entry[a, b], frame_rate, config)
            for a, b in zip(rows, cols, strict=True)
        ]
    ).reshape(-1)
    feasible = np.isfinite(motion)
    shapes = {t.embeddings.shape[1:] for t in tracklets if t.embeddings is not None}
    if len(shapes) > 1:
        raise InputError(f"link_tracklets: galleries have different (P, D) shapes {shapes}")
    balanced = np.full((n, n), np.nan)  # calibrated p_same of pairs with evidence
    for a in np.unique(rows[feasible]):
        pick = np.flatnonzero(feasible & (rows == a))
        mine = tracklets[a]
        others = [tracklets[b] for b in cols[pick]]
        if mine.embeddings is None:
            continue
        with_views = [k for k, other in enumerate(others) if other.embeddings is not None]
        if not with_views:
            continue
        gallery = np.concatenate([others[k].embeddings for k in with_views])
        visible = np.concatenate([others[k].visibility for k in with_views])
        owner = np.repeat(with_views, [len(others[k].embeddings) for k in with_views])
        distance, shared = slot_distances(mine.embeddings, mine.visibility, gallery, visible)
        comparable = shared[..., 0]  # (V, G) the holistic slot: shown whenever a view is
        probability = calibration.fused_probability(distance, shared)  # (V, G)
        for k in with_views:
            seen = comparable[:, owner == k]
            if not seen.any():  # no slot seen by both: no vote, no join
                continue
            median = float(np.median(probability[:, owner == k][seen]))
            balanced[a, cols[pick[k]]] = median
    p_same = _candidate_posterior(balanced, np.where(exit_entry, config.border_prior, 1.0))
    motion_of = np.full((n, n), np.inf)
    motion_of[rows, cols] = motion
    joinable = np.nan_to_num(p_same, nan=-1.0) >= config.min_probability
    cost[joinable] = (1.0 - p_same[joinable]) + config.motion_weight * motion_of[joinable]
    return cost


def _candidate_posterior(balanced: np.ndarray, max_prior: np.ndarray) -> np.ndarray:
    """Same-person probability of each pair given how many candidates compete for it.

    The calibration is fitted on balanced pairs (prior 0.5), so its odds are a likelihood
    ratio ``LR = p / (1 - p)``. A tracklet end with ``n`` plausible later starts (and a
    start with ``n`` plausible earlier ends) continues as at most one of them, or as none:
    a uniform prior ``1 / (n + 1)`` over these outcomes (the larger ``n`` of the two sides),
    capped by ``max_prior``, gives ``p = LR pi / (LR pi + 1 - pi)`` (Bayes' rule); one
    candidate with no cap keeps ``p``.

    Args:
        balanced: `(T, T)` float calibrated p_same, NaN where a pair has no evidence.
        max_prior: `(T, T)` float in [0, 1], the largest prior of each pair.

    Returns:
        `(T, T)` float posterior, NaN where ``balanced`` is NaN.
    """
    known = ~np.isnan(balanced)
    competitors = np.maximum(known.sum(axis=1)[:, None], known.sum(axis=0)[None, :])
    prior = np.minimum(1.0 / (competitors + 1.0), max_prior)
    p = np.clip(balanced, 1e-9, 1 - 1e-9)
    ratio = p / (1.0 - p)
    return np.where(known, ratio * prior / (ratio * prior + 1.0 - prior), np.nan)


def _motion(
    a: Tracklet, b: Tracklet, gap: float, exit_entry: bool, frame_rate: float, config: LinkConfig
) -> float:
    """Distance / reach in [0, 1] of the pair (module docstring, step c), ``exit_entry``: ``a``
    left at the frame border and ``b`` entered at one; inf if implausible."""
    height_a = float(a.last_box[3] - a.last_box[1])
    height_b = float(b.first_box[3] - b.first_box[1])
    if min(height_a, height_b) <= 0:
        return math.inf
    if max(height_a, height_b) / min(height_a, height_b) > config.max_height_ratio:
        return math.inf
    end, start = _centre(a.last_box), _centre(b.first_box)
    frames = min(gap, config.extrapolate) * frame_rate
    candidates = (
        start - end,
        start - (end + a.last_velocity * frames),
        (start - b.first_velocity * frames) - end,
    )
    distance = min(float(np.linalg.norm(c)) for c in candidates) / (0.5 * (height_a + height_b))
    reach = config.min_reach + config.max_speed * gap
    if exit_entry:
        reach *= config.border_reach
    return distance / reach if distance <= reach else math.inf


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0], np.float64)


class TrackletCollector:
    """Gathers, frame by frame, what :func:`link_tracklets` needs of each output track.

    Memory per track is bounded: its first and last boxes, the boxes of its last
    ``velocity_frames`` frames and a gallery of at most ``gallery_size`` views, the
    detections with the highest ``score x (1 - largest IoU with another detection of the
    frame)`` that show at least one slot (best-lit, least occluded crops),
    each stored as a float16 copy.

    Args:
        image_size: ``(width, height)`` px of the frames (for the border test).
        config: ``gallery_size``, ``visibility_threshold`` and ``border_margin``.
        velocity_frames: frames over which the start and end velocities are measured.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        config: LinkConfig = LinkConfig(),
        velocity_frames: int = 5,
    ) -> None:
        self.image_size = image_size
        self.config = config
        self.velocity_frames = max(velocity_frames, 2)
        self._tracks: dict[int, _Collected] = {}
        self._order = itertools.count()

    def add(self, frame_id: int, detections: Detections, track_ids: np.ndarray) -> None:
        """Record one frame: ``track_ids`` `(N,)` int aligned with ``detections``, -1 for
        detections that are not output (ignored, but they count as occluders)."""
        if len(detections) == 0:
            return
        overlap = box_iou(detections.boxes[:, None], detections.boxes[None])
        np.fill_diagonal(overlap, 0.0)
        clear = 1.0 - overlap.max(axis=1)
        for i in np.flatnonzero(np.asarray(track_ids) >= 0):
            track = self._tracks.get(int(track_ids[i]))
            box = detections.boxes[i].astype(np.float64)
            if track is None:
                track = self._tracks[int(track_ids[i])] = _Collected()
            track.see(frame_id, box, self.velocity_frames)
            if detections.embeddings is not None:
                seen = detections.visibility[i] > self.config.visibility_threshold
                if seen.any():
                    quality = float(detections.scores[i]) * float(clear[i])
                    embedding = detections.embeddings[i].astype(np.float16)  # a copy, half size
                    view = (quality, next(self._order), embedding, seen)
                    if len(track.views) < self.config.gallery_size:
                        heapq.heappush(track.views, view)
                    elif quality > track.views[0][0]:
                        heapq.heapreplace(track.views, view)

    def tracklets(self) -> list[Tracklet]:
        """The tracklets seen so far, in order of first appearance."""
        return [
            track.tracklet(track_id, self._at_border) for track_id, track in self._tracks.items()
        ]

    def _at_border(self, box: np.ndarray) -> bool:
        width, height = self.image_size
        margin_x, margin_y = self.config.border_margin * width, self.config.border_margin * height
        return bool(
            box[0] <= margin_x
            or box[1] <= margin_y
            or box[2] >= width - margin_x
            or box[3] >= height - margin_y
        )


class _Collected:
    """One track's bounded record inside :class:`TrackletCollector`."""

    def __init__(self) -> None:
        self.first_boxes: list[tuple[int, np.ndarray]] = []
        self.last_boxes: list[tuple[int, np.ndarray]] = []
        self.views: list[tuple[float, int, np.ndarray, np.ndarray]] = []  # min-heap on quality

    def see(self, frame_id: int, box: np.ndarray, keep: int) -> None:
        if len(self.first_boxes) < keep:
            self.first_boxes.append((frame_id, box))
        self.last_boxes = [*self.last_boxes[-(keep - 1) :], (frame_id, box)]

    def tracklet(self, track_id: int, at_border) -> Tracklet:
        views = sorted(self.views, reverse=True)
        return Tracklet(
            track_id=track_id,
            first_frame=self.first_boxes[0][0],
            last_frame=self.last_boxes[-1][0],
            first_box=self.first_boxes[0][1],
            last_box=self.last_boxes[-1][1],
            first_velocity=_velocity(self.first_boxes),
            last_velocity=_velocity(self.last_boxes),
            embeddings=np.stack([v[2] for v in views]).astype(np.float32) if views else None,
            visibility=np.stack([v[3] for v in views]).astype(np.float32) if views else None,
            first_at_border=at_border(self.first_boxes[0][1]),
            last_at_border=at_border(self.last_boxes[-1][1]),
        )


def _velocity(boxes: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """`(2,)` px per frame of the box centre from the first to the last of ``boxes``."""
    (f0, b0), (f1, b1) = boxes[0], boxes[-1]
    return (_centre(b1) - _centre(b0)) / (f1 - f0) if f1 > f0 else np.zeros(2)
