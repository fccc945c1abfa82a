"""Faults inside a multi-worker ``kpr-track track-dataset`` run, caused for real: the
process tracking one sequence is SIGKILLed mid-sequence (as the out-of-memory killer
does), locally and as a Ray task. Only that sequence's partial work may be lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import shared_path

from kpr_track.cli import main
from kpr_track.datasets.faults import PAUSE_ENV

MOT17_MINI = ("data", "MOT17-mini", "train")
KILLED = "MOT17-05-FRCNN"
# Public detections, no appearance model, one torch thread: fast and deterministic.
FAST = ["--det", "mot", "--reid", "none", "--threads", "1", "--no-progress"]


def _track_dataset(root: Path, out: Path, *extra: str) -> list[str]:
    return ["track-dataset", str(root), "--format", "mot", "--out", str(out), *FAST, *extra]


def _paused_pid(pid_file: Path, alive=lambda: True, timeout: float = 180.0) -> int:
    """The pid a worker wrote when it paused mid-sequence (kpr_track.datasets.faults)."""
    deadline = time.monotonic() + timeout
    while not pid_file.exists():
        assert alive() and time.monotonic() < deadline, f"no worker paused at {pid_file}"
        time.sleep(0.05)
    return int(pid_file.read_text())


def _results(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out.glob("*.txt"))}


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    """The seven MOT17-mini results of a run nothing disturbed."""
    out = tmp_path_factory.mktemp("undisturbed")
    assert main(_track_dataset(shared_path(*MOT17_MINI), out)) == 0
    return out


def _paused_run(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path, int]:
    """``kpr-track track-dataset --workers 2`` over MOT17-mini in a child process, its
    worker of KILLED paused mid-sequence: the command, --out, TMPDIR and that worker's pid."""
    out, pauses, scratch = tmp_path / "out", tmp_path / "pauses", tmp_path / "tmp"
    pauses.mkdir()
    scratch.mkdir()
    env = {**os.environ, PAUSE_ENV: f"{KILLED}:{pauses}", "TMPDIR": str(scratch)}
    env["KPR_TRACK_OFFLINE"] = "1"
    root = shared_path(*MOT17_MINI)
    command = [sys.executable, "-m", "kpr_track", *_track_dataset(root, out, "--workers", "2")]
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = _paused_pid(pauses / f"{KILLED}.pid", lambda: run.poll() is None)
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    assert f"PPid:\t{run.pid}" in status  # a worker of the command, not the command
    return run, out, scratch, pid


def test_killed_local_worker_fails_its_sequence_only(tmp_path, undisturbed, capsys):
    root = shared_path(*MOT17_MINI)
    run, out, scratch, pid = _paused_run(tmp_path)
    os.kill(pid, signal.SIGKILL)  # it stays paused no more: its pid file is left
    stdout, stderr = (stream.decode() for stream in run.communicate(timeout=300))

    assert run.returncode == 1, stderr
    assert f"{KILLED}: failed: worker killed by SIGKILL" in stderr
    assert "1 of 7 sequences failed (MOT17-05-FRCNN); run the same command again" in stderr
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr
    assert "wrote 6 results" in stdout
    finished = _results(out)
    assert sorted(finished) == sorted(set(_results(undisturbed)) - {f"{KILLED}.txt"})
    assert not (out / "summaries" / f"{KILLED}.json").exists()
    assert list(scratch.iterdir()) == []  # the killed worker's temporary files are gone
    summary = json.loads((out / "dataset_summary.json").read_text())
    assert sorted(summary["sequences"]) == sorted(Path(n).stem for n in finished)

    assert main(_track_dataset(root, out)) == 0  # the rerun tracks the one that failed
    assert capsys.readouterr().out.splitlines()[0].endswith(f"6 already in {out}, 1 to track")
    assert _results(out) == _results(undisturbed)  # byte for byte
    rerun, reference = (json.loads((f / "eval.json").read_text()) for f in (out, undisturbed))
    assert rerun["sequences"] == reference["sequences"]
    assert rerun["combined"] == reference["combined"]
    assert json.loads((out / "dataset_summary.json").read_text())["total"]["sequences"] == 7


def test_stopped_command_stops_its_workers(tmp_path):
    """SIGTERM to the command (as `timeout` or a scheduler sends it) with a worker busy."""
    run, out, scratch, pid = _paused_run(tmp_path)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signal.SIGTERM
    assert (
        stderr.decode().strip().splitlines()[-1] == "kpr-track track-dataset: interrupted (SIGTERM)"
    )
    assert not Path(f"/proc/{pid}").exists()  # the worker was stopped, not left behind
    assert not (out / f"{KILLED}.txt").exists()
    assert [p.name for p in scratch.iterdir() if p.name.startswith("kpr-track-")] == []


def _kill_attempts(pid_file: Path, pids: list[int], kills: int, release: bool) -> None:
    """SIGKILL the first ``kills`` attempts of a task as each pauses; with ``release``,
    let the next attempt go on."""
    for attempt in range(kills + release):
        pids.append(_paused_pid(pid_file))
        if attempt < kills:
            os.kill(pids[-1], signal.SIGKILL)
        pid_file.unlink()


def test_ray_task_killed_is_retried_then_reported(tmp_path, undisturbed, capsys, monkeypatch):
    """A local Ray instance on loopback; the worker process of a running task is killed."""
    import ray  # in the test extra: pip install -e ".[test]"

    source = shared_path(*MOT17_MINI)
    root = tmp_path / "split"
    root.mkdir()
    for name in (KILLED, "MOT17-09-FRCNN"):
        (root / name).symlink_to(source / name)
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no report to the Ray project's server
    monkeypatch.setenv(PAUSE_ENV, f"{KILLED}:{pauses}")  # reaches the workers Ray starts
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level="ERROR")  # fmt: skip
    retried, exhausted = tmp_path / "retried", tmp_path / "exhausted"
    pid_file = pauses / f"{KILLED}.pid"
    pids: list[list[int]] = [[], []]
    try:
        killer = threading.Thread(target=_kill_attempts, args=(pid_file, pids[0], 1, True))
        killer.start()
        code = main(_track_dataset(root, retried, "--executor", "ray", "--shared-out",
                                   "--max-retries", "1", "--no-eval"))  # fmt: skip
        killer.join()
        assert code == 0
        killer = threading.Thread(target=_kill_attempts, args=(pid_file, pids[1], 1, False))
        killer.start()
        code = main(_track_dataset(root, exhausted, "--executor", "ray", "--shared-out",
                                   "--max-retries", "0", "--no-eval"))  # fmt: skip
        killer.join()
    finally:
        ray.shutdown()
    assert pids[0][0] != pids[0][1] and len(pids[1]) == 1  # the retry: another worker process
    expected = _results(undisturbed)
    assert _results(retried) == {name: expected[name] for name in _results(retried)}
    assert sorted(_results(retried)) == [f"{KILLED}.txt", "MOT17-09-FRCNN.txt"]
    summary = json.loads((retried / "dataset_summary.json").read_text())
    assert summary["total"]["sequences"] == 2  # counted once, not once per attempt
    assert [p.name for p in retried.iterdir() if p.name.startswith(".")] == []  # no half file

    assert code == 1
    err = capsys.readouterr().err
    assert f"{KILLED}: failed: Ray task failed after 0 retries (WorkerCrashedError" in err, err
    assert "1 of 2 sequences failed (MOT17-05-FRCNN)" in err
    assert _results(exhausted) == {"MOT17-09-FRCNN.txt": expected["MOT17-09-FRCNN.txt"]}


def test_sequence_with_bad_input_fails_alone(tmp_path, undisturbed, capsys):
    """In this process (--workers 1): a sequence whose det.txt is malformed is reported
    with its one-line error; the next sequence is tracked and written."""
    source = shared_path(*MOT17_MINI)
    root = tmp_path / "split"
    broken = root / "MOT17-02-FRCNN"
    (broken / "det").mkdir(parents=True)
    for name in ("seqinfo.ini", "img1"):
        (broken / name).symlink_to(source / "MOT17-02-FRCNN" / name)
    (broken / "det" / "det.txt").write_text("1,-1,not,a,box\n")
    (root / "MOT17-09-FRCNN").symlink_to(source / "MOT17-09-FRCNN")
    out = tmp_path / "out"
    assert main(_track_dataset(root, out)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("MOT17-02-FRCNN: failed: ") and "det.txt" in err[0]
    assert err[-1].startswith("kpr-track track-dataset: 1 of 2 sequences failed (MOT17-02-FRCNN)")
    assert _results(out) == {"MOT17-09-FRCNN.txt": _results(undisturbed)["MOT17-09-FRCNN.txt"]}
