"""The public appearance API: KPR as a ReID module for any tracker.

:class:`KPR` wraps the appearance stage (:class:`~kpr_track.reid.KPRAppearance`) behind
plain arrays, so trackers of other libraries (``kpr_track.integrations``) and user code
never build a :class:`~kpr_track.detections.Detections` themselves::

    kpr = KPR.from_pretrained("kpr")
    embeddings, visibility = kpr.embed(frame_bgr, boxes_xyxy, keypoints)  # (N, P, D), (N, P)
    distances = KPR.distance((embeddings, visibility), (embeddings, visibility))  # (N, N)
    vectors = KPR.flat(embeddings, visibility)  # (N, P * D), unit norm

Shape letters: N detections, P = 1 + K embedding slots (holistic then parts; P = 1 for
the holistic-only models such as ``kpr-global``; P = 9 for the default ``kpr``), D
embedding dimension.

Negative prompts come from the other boxes' keypoints of the same call (in
:func:`~kpr_track.prompts.render_prompts`), so pass every person of the frame in one
call. Without keypoints, top-down pose (Ultralytics yolo11n-pose on each box) supplies
them when the model reads keypoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detections import Detections
from .errors import InputError
from .keypoints import NUM_KEYPOINTS
from .reid.registry import DEFAULT_REID, REID_MODELS

if TYPE_CHECKING:  # torch-heavy modules load on first use
    from .detectors import PoseFn
    from .reid import KPRAppearance
    from .reid.calibration import DistanceCalibration

# Below this, a norm or a visibility sum counts as zero.
_EPS = 1e-12


class KPR:
    """KPR appearance for one frame's boxes at a time, in plain arrays.

    Args:
        appearance: the appearance stage (see :meth:`from_pretrained`).
        reads_keypoints: whether the model's output depends on keypoints (prompts or
            pose-guided parts); when False, missing keypoints are not estimated.
        pose: top-down pose ``(frame, boxes (N, 4)) -> keypoints (N, 17, 3)`` used when
            :meth:`embed` gets no keypoints; None builds Ultralytics yolo11n-pose on
            first need (weights through :func:`kpr_track.weights.resolve_weights`).
        device: torch device of the pose model built on first need.
    """

    def __init__(
        self,
        appearance: KPRAppearance,
        *,
        reads_keypoints: bool = True,
        pose: PoseFn | None = None,
        device: str = "cpu",
    ) -> None:
        self.appearance = appearance
        self.reads_keypoints = reads_keypoints
        self._pose = pose
        self._device = device

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_REID,
        *,
        device: str = "cpu",
        pose: PoseFn | None = None,
    ) -> KPR:
        """Load a shipped model by ``--reid`` name, or trained KPR weights from a file.

        Args:
            name_or_path: a name of :data:`kpr_track.reid.registry.REID_MODELS` (default
                ``kpr``), or the path of a ``.safetensors`` file written by
                ``kpr-track train`` (part embeddings, with its calibration if it has one).
            device: torch device, e.g. ``"cpu"`` or ``"cuda:0"``.
            pose: top-down pose function (see the class); None: yolo11n-pose on need.

        Raises:
            ConfigError: an unknown name that is not an existing file.
            WeightsError: the weights cannot be found, verified or loaded.
        """
        from .reid import KPRAppearance, build_reid
        from .reid.model import load_kpr_weights

        name = str(name_or_path)
        if name in REID_MODELS:
            return cls(
                build_reid(name, device=device),
                reads_keypoints=REID_MODELS[name].reads_keypoints,
                pose=pose,
                device=device,
            )
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            from .errors import ConfigError

            raise ConfigError(
                f"KPR.from_pretrained: {name!r} is neither a model name "
                f"({', '.join(REID_MODELS)}) nor an existing weights file"
            )
        model = load_kpr_weights(path)
        appearance = KPRAppearance(model, device=device, calibration=model.calibration)
        return cls(appearance, pose=pose, device=device)

    @property
    def calibration(self) -> DistanceCalibration | None:
        """The model's distance calibration (what :class:`~kpr_track.trackers.KPRTracker`
        reads to turn :meth:`distance` into evidence); None when the weights carry none."""
        return self.appearance.calibration

    def keypoints(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Top-down pose on ``boxes`` `(N, 4)` xyxy px: `(N, 17, 3)` float32 keypoints."""
        if self._pose is None:
            from .detectors import build_detector

            self._pose = build_detector("yolo-pose", device=self._device).pose_on_boxes
        return np.asarray(self._pose(frame, boxes), np.float32)

    def detections(
        self,
        frame: np.ndarray,
        boxes: np.ndarray,
        keypoints: np.ndarray | None = None,
        scores: np.ndarray | None = None,
    ) -> Detections:
        """:meth:`embed` as a :class:`~kpr_track.detections.Detections` carrying the boxes,
        scores (1 when None), keypoints (estimated when None and read by the model) and
        the embeddings / visibility."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        count = len(boxes)
        scores = np.ones(count, np.float32) if scores is None else scores
        if keypoints is None:
            keypoints = (
                self.keypoints(frame, boxes)
                if self.reads_keypoints and count
                else np.zeros((count, NUM_KEYPOINTS, 3), np.float32)
            )
        found = Detections(boxes=boxes, scores=scores, keypoints=keypoints)
        return self.appearance(frame, found)

    def embed(
        self,
        frame: np.ndarray,
        boxes: np.ndarray,
        keypoints: np.ndarray | None = None,
        scores: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed every person of one frame.

        Args:
            frame: `(H, W, 3)` BGR uint8 image.
            boxes: `(N, 4)` float xyxy in frame pixels, all the people of the frame (each
                box's negative prompts are the other boxes' keypoints inside it).
            keypoints: `(N, 17, 3)` COCO-17 ``(x px, y px, confidence in [0, 1])``, or None
                to run top-down pose on the boxes (only for models that read keypoints).
            scores: `(N,)` detector scores in [0, 1]; other boxes scoring under 0.1 give
                no negative prompts. None: every box scores 1.

        Returns:
            ``(embeddings, visibility)``: `(N, P, D)` float32, L2-normalised along D, and
            `(N, P)` float32 in [0, 1].

        Raises:
            InputError: arrays of the wrong shape, or a frame that is not `(H, W, 3)`.
        """
        found = self.detections(frame, boxes, keypoints, scores)
        return found.embeddings, found.visibility

    @staticmethod
    def distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Part-visibility distance between two sets of :meth:`embed` outputs.

        Args:
            a: ``(embeddings (Q, P, D), visibility (Q, P))``.
            b: ``(embeddings (G, P, D), visibility (G, P))``.

        Returns:
            `(Q, G)` float32 in [0, 1] (:func:`kpr_track.reid.part_distance`: the mean of
            the Euclidean part distances over mutually visible parts, weighted by
            ``sqrt(v_a v_b)``, halved; BPBReID Sec. 3.5). Pairs without a mutually visible
            part get ``1 +`` the largest distance. The plain average lets weak part
            distances outvote the holistic one; :meth:`same_probability` is the
            calibrated fusion the tracker uses.

        Raises:
            InputError: on mismatched shapes.
        """
        from .reid.distance import part_distance

        return part_distance(a[0], a[1], b[0], b[1])[0]

    def same_probability(
        self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Calibrated probability that two :meth:`embed` outputs show the same person: the
        fused evidence of the per-slot distances (holistic + the parts both show) that
        :class:`~kpr_track.trackers.KPRTracker` reads as ``p_same`` and ``kpr-track
        eval-reid`` ranks by (:meth:`~kpr_track.reid.calibration.DistanceCalibration.
        fused_probability` of :func:`~kpr_track.reid.distance.slot_distances`), for one
        crop against one crop.

        Args:
            a: ``(embeddings (Q, P, D), visibility (Q, P))``.
            b: ``(embeddings (G, P, D), visibility (G, P))``.

        Returns:
            `(Q, G)` float32 in [0, 1].

        Raises:
            InputError: on mismatched shapes, or when the model carries no calibration.
        """
        from .reid.distance import slot_distances

        if self.calibration is None:
            raise InputError(
                "KPR.same_probability: these weights carry no distance calibration "
                "(fit one with `kpr-track calibrate`); use KPR.distance for ranking"
            )
        distance, shared = slot_distances(a[0], a[1], b[0], b[1])
        return self.calibration.fused_probability(distance, shared)

    @staticmethod
    def flat(embeddings: np.ndarray, visibility: np.ndarray) -> np.ndarray:
        """One unit vector per detection, for trackers that compare one vector.

        Each slot is L2-normalised, scaled by ``sqrt(v_i / sum_j v_j)`` and the slots are
        concatenated: ``x = concat_i sqrt(v_i) f_i / sqrt(V)``, ``V = sum_i v_i``, so
        ``||x|| = 1``. A row whose visibility is all zero uses the holistic slot (slot 0)
        alone, so no row is ever all-zero.

        What the cosine similarity of two such vectors approximates: with
        ``w_i = sqrt(v_i^a v_i^b)``, ``W = sum_i w_i`` and ``m2 = sum_i w_i ||f_i^a -
        f_i^b||^2 / W`` (the visibility-weighted mean *squared* part distance),

            cos(x^a, x^b) = (W / sqrt(V^a V^b)) (1 - m2 / 2).

        When both rows show the same parts (always for the holistic-only models),
        ``W = sqrt(V^a V^b)`` and ``(1 - cos) / 2 = m2 / 4``, which ranks like the part
        distance ``d = m1 / 2`` (``m1`` the weighted mean of the unsquared distances) and
        equals ``d^2`` when every shared part differs by the same amount (in general
        ``m2 / 4 >= d^2``, Jensen). Parts visible in only one row lower the cosine by the
        factor ``W / sqrt(V^a V^b) <= 1`` instead of being left out as in ``d``; with
        P = 1 the cosine is exactly ``1 - 2 d^2``.

        Args:
            embeddings: `(N, P, D)` float.
            visibility: `(N, P)` float in [0, 1].

        Returns:
            `(N, P * D)` float32, unit L2 norm per row.

        Raises:
            InputError: on mismatched shapes, or a row whose used slots are all zero
                vectors (not an embedding).
        """
        emb = np.asarray(embeddings, np.float32)
        vis = np.clip(np.asarray(visibility, np.float32), 0.0, 1.0)
        if emb.ndim != 3 or vis.shape != emb.shape[:2]:
            raise InputError(
                f"KPR.flat: expected embeddings (N, P, D) and visibility (N, P); "
                f"got {emb.shape} and {vis.shape}"
            )
        norms = np.linalg.norm(emb, axis=2, keepdims=True)
        unit = emb / np.maximum(norms, _EPS)
        weights = vis.copy()
        hidden = weights.sum(1) <= _EPS
        weights[hidden] = 0.0
        weights[hidden, 0] = 1.0
        out = (unit * np.sqrt(weights)[:, :, None]).reshape(len(emb), emb.shape[1] * emb.shape[2])
        length = np.linalg.norm(out, axis=1, keepdims=True)
        if (length <= _EPS).any():
            rows = np.flatnonzero(length[:, 0] <= _EPS).tolist()
            raise InputError(f"KPR.flat: rows {rows} have only all-zero embeddings in their slots")
        return (out / length).astype(np.float32)
