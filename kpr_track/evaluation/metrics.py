"""Tracking metrics through TrackEval's metric classes (nothing here re-implements them).

- HOTA, DetA, AssA, LocA (Luiten et al., "HOTA: A Higher Order Metric for Evaluating
  Multi-Object Tracking", IJCV 2021): ``trackeval.metrics.HOTA``; the reported value
  is the mean over the 19 localisation thresholds 0.05..0.95, as TrackEval reports it.
- MOTA, MOTP, ID switches, fragmentations, MT/PT/ML (Bernardin & Stiefelhagen, CLEAR
  MOT, 2008): ``trackeval.metrics.CLEAR`` at IoU 0.5.
- IDF1, IDP, IDR (Ristani et al., ECCV 2016 workshops): ``trackeval.metrics.Identity``.

Sequences are combined with each metric's ``combine_sequences`` (sums of counts, then
the ratios), as TrackEval's Evaluator does for its ``COMBINED_SEQ`` row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RawResults = dict[str, dict[str, Any]]
"""TrackEval results of one sequence or a combination: metric class name -> fields."""

SUMMARY_FIELDS = (
    "HOTA DetA AssA LocA DetRe DetPr AssRe AssPr MOTA MOTP IDF1 IDP IDR "
    "IDSW Frag MT PT ML TP FP FN Recall Precision"
).split()


def _metrics() -> list[Any]:
    from trackeval.metrics import CLEAR, HOTA, Identity

    config = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    return [HOTA(), CLEAR(dict(config)), Identity(dict(config))]


def evaluate_sequence(data: dict[str, Any]) -> RawResults:
    """Run HOTA, CLEAR and Identity on one sequence.

    Args:
        data: TrackEval per-sequence data (see :func:`.filters.trackeval_data`).

    Returns:
        Raw TrackEval results keyed ``"HOTA"``, ``"CLEAR"``, ``"Identity"``.
    """
    return {metric.get_name(): metric.eval_sequence(data) for metric in _metrics()}


def combine_sequences(per_sequence: dict[str, RawResults]) -> RawResults:
    """Combine raw results of several sequences (TrackEval's ``combine_sequences``)."""
    return {
        metric.get_name(): metric.combine_sequences(
            {name: results[metric.get_name()] for name, results in per_sequence.items()}
        )
        for metric in _metrics()
    }


def summarize(results: RawResults) -> dict[str, float | int]:
    """The headline numbers of raw results, as plain Python numbers.

    Returns:
        ``HOTA, DetA, AssA, LocA, DetRe, DetPr, AssRe, AssPr`` (means over the HOTA
        thresholds), ``MOTA, MOTP`` (MOTP as mean IoU of matches), ``IDF1, IDP, IDR``,
        ``Recall, Precision`` (CLEAR, IoU 0.5) in [0, 1] (MOTA may be negative) and the
        counts ``IDSW, Frag, MT, PT, ML, TP, FP, FN``.
    """
    hota, clear, identity = results["HOTA"], results["CLEAR"], results["Identity"]
    values: dict[str, Any] = {
        name: np.mean(hota[name])
        for name in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")
    }
    values.update(
        {name: clear[name] for name in ("MOTA", "MOTP", "IDSW", "Frag", "MT", "PT", "ML")}
    )
    values.update(TP=clear["CLR_TP"], FP=clear["CLR_FP"], FN=clear["CLR_FN"])
    values.update(Recall=clear["CLR_Re"], Precision=clear["CLR_Pr"])
    values.update({name: identity[name] for name in ("IDF1", "IDP", "IDR")})
    counts = {"IDSW", "Frag", "MT", "PT", "ML", "TP", "FP", "FN"}
    return {
        name: int(values[name]) if name in counts else float(values[name])
        for name in SUMMARY_FIELDS
    }
