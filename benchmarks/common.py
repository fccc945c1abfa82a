"""Shared by the benchmarks: data and weights paths, sequences, frames, report helpers."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from kpr_track.errors import ConfigError, InputError, KprTrackError

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE_DIR = ROOT / "benchmarks" / "cache"
RESULTS_DIR = ROOT / "benchmarks" / "results"
YOLOX_WEIGHTS = SHARED / "weights" / "yolox_nano_416x416.onnx"
# Open Model Zoo person-reidentification-retail-0287 (ReID-trained OSNet-style, one 256-d
# embedding per crop); the old third-party 0288 conversion is faulty (../shared/README.md).
RETAIL_WEIGHTS = SHARED / "weights" / "person-reidentification-retail-0287.onnx"
MOT17_MINI = SHARED / "data" / "MOT17-mini" / "train"
_MOT17_NAMES = ("02", "04", "05", "09", "10", "11", "13")

# Sequence groups: a group's sequences are evaluated together (TrackEval's combined row).
# MOT17-02-raw540 (30 fps street), MOT20-01 (25 fps 1080p crowd) and MOT16-04-first50
# (30 fps 1080p, 50 frames) are the sequences the presets are tuned on; PETS09-S2L1
# (7 fps) and MOT17-mini are reported on settings they did not choose
# (configs/trackers/*.yaml).
SEQUENCE_GROUPS: dict[str, tuple[Path, ...]] = {
    "PETS09-S2L1": (SHARED / "data" / "PETS09-S2L1",),
    "MOT17-02-raw540": (SHARED / "data" / "MOT17-02-raw540",),
    "MOT20-01": (SHARED / "data" / "MOT20-01",),
    "MOT16-04-first50": (SHARED / "data" / "MOT16-04-first50",),
    "MOT17-mini": tuple(MOT17_MINI / f"MOT17-{n}-FRCNN" for n in _MOT17_NAMES),
}

# Detection sources: name -> label in the tables. ``yolo-pose`` runs at a fixed 960 input
# on every sequence; ``yolo-pose-auto`` at the input size ``kpr-track VIDEO`` picks from the
# source's resolution (kpr_track.detectors.default_imgsz: 1920 for 1080p).
SOURCES = {
    "det": "public det.txt",
    "yolox": "YOLOX-nano 416",
    "yolo-pose": "yolo11n-pose 960",
    "yolo-pose-auto": "yolo11n-pose default input",
}
YOLO_POSE_SOURCES = ("yolo-pose", "yolo-pose-auto")
YOLO_POSE_OPTIONS = {"imgsz": 960, "conf": 0.05}
YOLOX_OPTIONS = {"conf": 0.1}


def check_shared() -> None:
    """Raise :class:`InputError` when ../shared (data and weights) is missing."""
    if not SHARED.is_dir():
        raise InputError(f"{SHARED}: the benchmarks need the ../shared folder beside the repo")


def resolve_groups(names: list[str]) -> dict[str, tuple[Path, ...]]:
    """Sequence groups by name; a single MOT17-mini sequence name is its own group.

    Raises:
        ConfigError: on an unknown name (lists the valid ones).
    """
    singles = {path.name: (path,) for paths in SEQUENCE_GROUPS.values() for path in paths}
    known = {**SEQUENCE_GROUPS, **singles}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"unknown sequence(s) {unknown}; expected any of {sorted(known)}")
    return {name: known[name] for name in names}


def available_sources(seq_dirs: tuple[Path, ...], sources: list[str]) -> list[str]:
    """The ``sources`` a group provides: ``det`` needs a ``det/det.txt`` in each sequence
    (MOT17-02-raw540 ships none); ``yolo-pose-auto`` needs a sequence whose default input
    size is not the fixed 960 of ``yolo-pose`` (elsewhere the two are the same detections);
    the other detectors run anywhere."""
    has_det = all((seq_dir / "det" / "det.txt").is_file() for seq_dir in seq_dirs)
    own_size = any(auto_imgsz(seq_dir) != YOLO_POSE_OPTIONS["imgsz"] for seq_dir in seq_dirs)
    wanted = {"det": has_det, "yolo-pose-auto": own_size}
    return [source for source in sources if wanted.get(source, True)]


def auto_imgsz(seq_dir: Path) -> int:
    """The yolo-pose input size ``kpr-track VIDEO`` picks for a sequence (seqinfo.ini's
    imWidth / imHeight through :func:`kpr_track.detectors.base.default_imgsz`; the
    smallest size when the file gives none)."""
    from kpr_track.detectors.base import default_imgsz
    from kpr_track.evaluation.mot import read_seqinfo

    info = read_seqinfo(seq_dir)
    width, height = info.get("imWidth"), info.get("imHeight")
    if width is None or height is None:
        return default_imgsz("yolo-pose")
    return default_imgsz("yolo-pose", int(width), int(height))


def machine_info() -> dict:
    """CPU, thread and load facts that make timings comparable (or not)."""
    import torch

    found = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "commit": source_commit(),
    }
    for package in ("torch", "onnxruntime", "ultralytics", "trackers", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def source_commit() -> str | None:
    """The checkout's ``git`` commit (short hash, ``+dirty`` with uncommitted changes to
    tracked files), recorded with every result; None outside a git checkout."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def _git(*args: str) -> str:
    """Stripped standard output of ``git -C ROOT ARGS``; raises on failure."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub Markdown table; floats are printed as given (format them before)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def add_runtime_arguments(parser) -> None:
    """``--threads``: torch / onnxruntime threads per process (None: library defaults)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and onnxruntime threads per process (default: the libraries' own; "
        "on a busy 2-core machine 1 is much faster than 2)",
    )


def benchmark_main(doc: str, add_arguments, run, argv: list[str] | None, prog: str | None) -> int:
    """Shared entry point of the benchmark scripts: parse ``argv`` with the script's
    ``add_arguments``, call its ``run``; a KprTrackError prints one line and returns 2."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except KprTrackError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
