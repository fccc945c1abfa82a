"""The one container that travels between pipeline stages.

A :class:`Detections` holds the ``N`` people found in one frame:

- ``boxes``: `(N, 4)` float32, xyxy in pixels of the full frame;
- ``scores``: `(N,)` float32 detector confidence in [0, 1];
- ``keypoints``: `(N, 17, 3)` float32 COCO-17 ``(x px, y px, confidence in [0, 1])``;
  a keypoint the pose model did not find has confidence 0;
- ``embeddings`` (optional): `(N, 1 + K, D)` float32 L2-normalised
  ``[foreground, part_1..part_K]`` embeddings filled by the appearance stage;
- ``visibility`` (optional): `(N, 1 + K)` float32 in [0, 1], same order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import InputError
from .keypoints import NUM_KEYPOINTS


@dataclass(frozen=True)
class Detections:
    """People detected in one frame, with shapes validated at construction.

    Raises:
        InputError: when an array has the wrong shape, is not finite, or when
            ``embeddings`` and ``visibility`` disagree; the message gives the field,
            the expected shape and the actual one.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    embeddings: np.ndarray | None = None
    visibility: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = _as_float32("boxes", self.boxes)
        n = boxes.shape[0] if boxes.ndim == 2 else -1
        _check_shape("boxes", boxes, (n, 4))
        _check_shape("scores", _as_float32("scores", self.scores), (n,))
        _check_shape("keypoints", _as_float32("keypoints", self.keypoints), (n, NUM_KEYPOINTS, 3))
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", _as_float32("scores", self.scores))
        object.__setattr__(self, "keypoints", _as_float32("keypoints", self.keypoints))
        if (self.embeddings is None) != (self.visibility is None):
            raise InputError("Detections: embeddings and visibility must be given together")
        if self.embeddings is not None:
            emb = _as_float32("embeddings", self.embeddings)
            if emb.ndim != 3 or emb.shape[0] != n:
                raise InputError(
                    f"Detections.embeddings: expected shape (N={n}, 1+K, D), got {emb.shape}"
                )
            vis = _as_float32("visibility", self.visibility)
            _check_shape("visibility", vis, emb.shape[:2])
            object.__setattr__(self, "embeddings", emb)
            object.__setattr__(self, "visibility", vis)

    @classmethod
    def empty(cls) -> Detections:
        """A frame with nobody in it."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            keypoints=np.zeros((0, NUM_KEYPOINTS, 3), np.float32),
        )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: np.ndarray | slice | list[int]) -> Detections:
        """Select detections by integer indices, a boolean mask or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            keypoints=self.keypoints[index],
            embeddings=None if self.embeddings is None else self.embeddings[index],
            visibility=None if self.visibility is None else self.visibility[index],
        )

    def with_appearance(self, embeddings: np.ndarray, visibility: np.ndarray) -> Detections:
        """A copy carrying part ``embeddings`` `(N, 1+K, D)` and ``visibility`` `(N, 1+K)`."""
        return replace(self, embeddings=embeddings, visibility=visibility)

    def only_embedded(self, targets: np.ndarray) -> Detections:
        """A copy whose embeddings and visibility are zero outside the `(N,)` bool
        ``targets``: what the appearance stage returns when it embeds only those (replaying
        precomputed embeddings as a tracker's ``appearance_targets`` asks). Unchanged
        without embeddings.

        Raises:
            InputError: ``targets`` is not `(N,)`.
        """
        keep = np.asarray(targets, bool)
        if keep.shape != (len(self),):
            raise InputError(f"targets: expected shape ({len(self)},), got {keep.shape}")
        if self.embeddings is None:
            return self
        return self.with_appearance(
            np.where(keep[:, None, None], self.embeddings, 0.0),
            np.where(keep[:, None], self.visibility, 0.0),
        )


def _as_float32(name: str, array: np.ndarray) -> np.ndarray:
    out = np.asarray(array, dtype=np.float32)
    if not np.isfinite(out).all():
        raise InputError(f"Detections.{name}: contains NaN or infinite values")
    return out


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    ok = array.ndim == len(expected) and all(
        e < 0 or a == e for a, e in zip(array.shape, expected, strict=True)
    )
    if not ok:
        shown = tuple("N" if e < 0 else e for e in expected)
        raise InputError(f"Detections.{name}: expected shape {shown}, got {array.shape}")
