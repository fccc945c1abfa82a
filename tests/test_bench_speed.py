"""The speed benchmark's association section recovers the matches it plants."""

from __future__ import annotations

from kpr_track.cli.bench import load_benchmark

speed = load_benchmark("speed")  # the entry point imports its sibling modules
stages, timing, e2e = (load_benchmark(n) for n in ("speed_stages", "speed_common", "speed_e2e"))


def test_association_section_finds_every_planted_match(monkeypatch):
    monkeypatch.setattr(stages, "TRACK_COUNTS", (10, 30))
    result = stages.association_speed(repeats=1)
    for count in (10, 30):
        assert result[count]["matches"] == count  # each detection is a jittered track
        assert result[count]["tracks"] == count  # every person confirmed, nobody twice
        assert result[count]["distance_ms"] > 0 and result[count]["assignment_ms"] > 0
    assert result["tracemalloc_peak_mib"] > 0


def test_timed_returns_the_median_of_real_calls():
    calls = []
    seconds = timing.timed(calls.append, 3, 1)
    assert calls == [1, 1, 1, 1]  # one warm-up call + 3 timed ones
    assert seconds >= 0


def test_timed_together_interleaves_the_rounds(monkeypatch):
    order = []
    clock = iter(range(100))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    seconds = timing.timed_together(
        {"a": lambda: order.append("a"), "b": lambda: (order.append("b"), next(clock))}, 3
    )
    assert order == ["a", "b"] * 4  # a warm-up round, then 3 rounds of every call
    assert seconds == {"a": 1, "b": 2}  # "b" spends one extra clock tick inside each call


def test_end_to_end_section_runs_the_cli_pipeline_in_both_modes(pets_gt):
    options = e2e.tracking_options(det=f"gt:{pets_gt}", reid="none")
    overlapped = e2e.end_to_end(4, options, overlap=True)
    sequential = e2e.end_to_end(4, options, overlap=False)
    for run in (overlapped, sequential):
        assert run["frames"] == 4 and run["detections_per_frame"] >= 3  # PETS09 gt: 3 at first
        assert set(run["share_of_time"]) == {"decode", "detect", "track"}
        assert abs(sum(run["share_of_time"].values()) - 1) < 1e-9
    assert overlapped["overlap"] and not sequential["overlap"]


def test_the_crowd_run_reads_mot20_01():
    gt = e2e.MOT20_01 / "gt" / "gt.txt"
    run = e2e.end_to_end(3, e2e.tracking_options(det=f"gt:{gt}", reid="none"), False, e2e.MOT20_01)
    assert run["sequence"] == "MOT20-01" and run["frames"] == 3 and run["runtime"] == "-"
    assert run["detections_per_frame"] > 20  # a crowd: MOT20-01 gt has 20+ people a frame
    assert run["reid_vs_detection"] == 0.0
