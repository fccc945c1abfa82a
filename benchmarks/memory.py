"""Memory held by a long ``kpr-track track`` run: peak RSS on a video and on it played n times.

A tracker that keeps what it no longer needs (ended tracks, their galleries, per-frame
records) grows with the length of a video; one that does not reaches its peak early and
stays there. This runs ``kpr-track track VIDEO`` with the default settings (each run in
its own process) on the whole video and on the video played ``n`` times through
(``--passes``, default 1 and 3; the replay is an MJPG AVI of the decoded frames), and
reads each run's peak resident set size (``VmHWM`` of ``/proc/<pid>/status``) while it
runs. Target: the longest run's peak within 10 % of the single pass's.

Default video: MOT20-01 (1920 x 1080, 429 frames, about 46 people per frame), the
crowded sequence. Run: ``python benchmarks/memory.py --out DIR`` or ``kpr-track bench
memory``; writes ``memory.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import SHARED, benchmark_main, check_shared, machine_info

from kpr_track.errors import InputError, KprTrackError

MOT20_01 = SHARED / "data" / "MOT20-01" / "video.mp4"
TARGET_RATIO = 1.10


def peak_rss_mib(pid: int) -> float:
    """``VmHWM`` (peak resident set size) of a running Linux process, MiB; 0 once gone.

    Raises:
        KprTrackError: on a system without ``/proc`` (this benchmark needs Linux).
    """
    if not Path("/proc/self/status").is_file():
        raise KprTrackError("peak RSS is read from /proc/<pid>/status: it needs Linux")
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # the process has just exited
        return 0.0
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields.get("VmHWM", "0 kB").split()[0]) / 1024


def frames_of(video: Path) -> int:
    """Frames of ``video``, counted by decoding it."""
    from kpr_track.io.video import VideoReader

    return sum(1 for _ in VideoReader(video))


def replayed(video: Path, count: int, folder: Path) -> Path:
    """``video`` played ``count`` times through, written as an MJPG AVI in ``folder``."""
    import cv2

    from kpr_track.io.video import VideoReader

    info = VideoReader(video).info
    path = folder / f"{video.stem}_x{count}.avi"
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"MJPG"), info.fps, (info.width, info.height)
    )
    for _ in range(count):
        for frame in VideoReader(video):
            writer.write(frame)
    writer.release()
    return path


def replayed_detections(det_file: Path, count: int, frames: int, folder: Path) -> Path:
    """MOTChallenge ``det.txt`` rows of a video of ``frames`` frames played ``count``
    times through: pass ``k`` (from 0) repeats every row with its frame + ``k * frames``."""
    import numpy as np

    rows = np.loadtxt(det_file, delimiter=",", ndmin=2)
    passes = []
    for k in range(count):
        shifted = rows.copy()
        shifted[:, 0] += k * frames
        passes.append(shifted)
    path = folder / f"{det_file.stem}_x{count}.txt"
    np.savetxt(path, np.concatenate(passes), delimiter=",", fmt="%.6g")
    return path


def tracked_peak(source: Path, out: Path, options: list[str]) -> dict:
    """Run ``kpr-track track SOURCE`` in a child process; its frames, peak RSS and time.

    Raises:
        KprTrackError: the run failed (names the command and its exit status).
    """
    command = [sys.executable, "-m", "kpr_track", "track", str(source), "--out", str(out)]
    command += ["--no-progress", *options]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak = 0.0
    while child.poll() is None:
        peak = max(peak, peak_rss_mib(child.pid))
        time.sleep(0.2)
    if child.returncode != 0:
        raise KprTrackError(f"{' '.join(command)} failed (exit status {child.returncode})")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "frames": summary["frames"],
        "tracks": summary["tracks"],
        "peak_rss_mib": round(peak, 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The memory benchmark's command-line options."""
    parser.add_argument("--video", type=Path, default=MOT20_01, help="video (default: MOT20-01)")
    parser.add_argument(
        "--passes", type=int, nargs="+", default=[1, 3], help="times through (default: 1 3)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for memory.json")
    parser.add_argument(
        "--track-options", default="", help="extra options of kpr-track track, one string"
    )
    parser.add_argument(
        "--public-detections",
        action="store_true",
        help="track with the sequence's det/det.txt beside the video (--det mot:FILE, "
        "replayed with the video) instead of running a detector",
    )


def run(args: argparse.Namespace) -> int:
    """Track the video once per ``--passes`` value; write memory.json."""
    check_shared()
    if not args.video.is_file():
        raise InputError(f"{args.video}: video not found")
    if args.public_detections and not (args.video.parent / "det" / "det.txt").is_file():
        raise InputError(f"{args.video.parent / 'det' / 'det.txt'}: no public detections")
    report: dict = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "video": str(args.video),
        "runs": {},
    }
    options = args.track_options.split()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out, prefix=".memory-") as tmp:
        for count in args.passes:
            source = args.video if count == 1 else replayed(args.video, count, Path(tmp))
            extra = []
            if args.public_detections:
                det = args.video.parent / "det" / "det.txt"
                if count > 1:
                    det = replayed_detections(det, count, frames_of(args.video), Path(tmp))
                extra = ["--det", f"mot:{det}"]
            measured = tracked_peak(source, Path(tmp) / f"run{count}", [*options, *extra])
            report["runs"][f"passes_{count}"] = measured
            print(f"{count} pass(es): {measured}", flush=True)
    first, last = (report["runs"][f"passes_{n}"] for n in (args.passes[0], args.passes[-1]))
    report["peak_rss_ratio"] = round(last["peak_rss_mib"] / first["peak_rss_mib"], 3)
    report["target_met"] = report["peak_rss_ratio"] <= TARGET_RATIO
    report["machine"] = machine_info()
    (args.out / "memory.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"peak RSS ratio {report['peak_rss_ratio']} (target <= {TARGET_RATIO})")
    return 0


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``python benchmarks/memory.py``."""
    return benchmark_main(__doc__, add_arguments, run, argv, prog)


if __name__ == "__main__":
    raise SystemExit(main())
