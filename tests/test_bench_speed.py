"""The speed benchmark's association section recovers the matches it plants."""

from __future__ import annotations

from kpr_track.cli_bench import load_benchmark

speed = load_benchmark("speed")


def test_association_section_finds_every_planted_match(monkeypatch):
    monkeypatch.setattr(speed, "TRACK_COUNTS", (10, 30))
    result = speed.association_speed(repeats=1)
    for count in (10, 30):
        assert result[count]["matches"] == count  # each detection is a jittered track
        assert result[count]["distance_ms"] > 0 and result[count]["assignment_ms"] > 0
    assert result["tracemalloc_peak_mib"] > 0


def test_timed_returns_the_median_of_real_calls():
    calls = []
    seconds = speed.timed(calls.append, 3, 1)
    assert calls == [1, 1, 1, 1]  # one warm-up call + 3 timed ones
    assert seconds >= 0
