"""Tracking evaluation: readers -> evaluation rules -> TrackEval metrics.

``evaluate(gt_paths, pred_paths, filters=True)`` is the entry point (also behind
``kpr-track eval``); the readers and :class:`SequenceData` serve other callers.
"""

from .evaluate import evaluate, load_ground_truth, load_predictions
from .sequence import GroundTruth, SequenceData, Tracks

__all__ = [
    "GroundTruth",
    "SequenceData",
    "Tracks",
    "evaluate",
    "load_ground_truth",
    "load_predictions",
]
