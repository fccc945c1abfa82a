"""Shared by the speed benchmark's modules: its sequences, medians of repeated and
interleaved calls, and the process's peak memory."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

from common import SEQUENCE_GROUPS, SHARED

PETS09 = SEQUENCE_GROUPS["PETS09-S2L1"][0]
# The crowd: 1080p station hall, about 13 people per frame at yolo-pose 960 (25 fps).
MOT20_01 = SHARED / "data" / "MOT20-01"


def timed(function: Callable[..., object], repeats: int, *args: object) -> float:
    """Median wall-clock seconds of ``repeats`` calls ``function(*args)`` (after one
    untimed warm-up call)."""
    return timed_together({"call": lambda: function(*args)}, repeats)["call"]


def timed_together(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall-clock seconds of each of ``calls``, timed in ``repeats`` interleaved
    rounds (every call once per round, after one untimed warm-up round).

    On a shared machine the speed drifts over seconds; interleaving exposes every call to
    the same drift, so the ratios of the medians hold where times taken one after the
    other do not (measured here: stage / trunk at batch 8 from 1.21 to 1.49 over three runs
    timed one after the other).
    """
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def peak_rss_mib() -> float:
    """Maximum resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
