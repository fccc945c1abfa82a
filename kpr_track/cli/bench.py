"""``kpr-track bench quality|speed``: run the benchmarks of a source checkout.

The benchmarks live in the repository's ``benchmarks/`` folder (they read the data in
``../shared``), not in the installed package, so this command works from a checkout
(editable install). Everything after the benchmark name goes to the benchmark::

    kpr-track bench quality --sequences MOT17-mini --detectors det --out /tmp/bench
    kpr-track bench speed --help
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

from ..errors import ConfigError

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
_MODULES = {
    "quality": "track_quality",
    "speed": "speed",
    "memory": "memory",
    "readme": "readme_tables",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` sub-command."""
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark of the source checkout (quality, speed, memory; readme: README "
        "tables)",
        description=(
            "Run a benchmark from the repository's benchmarks/ folder: 'quality' compares "
            "trackers on identical detections (HOTA, IDF1, ...), 'speed' measures per-stage "
            "throughput, 'memory' the peak RSS of a long run, 'readme' rewrites the README's "
            "result tables from benchmarks/results. Options after the name go to "
            "the benchmark (see "
            "'kpr-track bench quality --help')."
        ),
    )
    parser.add_argument("benchmark", choices=sorted(_MODULES), help="which benchmark")
    parser.add_argument(
        "options", nargs=argparse.REMAINDER, help="options of the benchmark (see its --help)"
    )
    parser.set_defaults(func=run)


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (its folder goes on ``sys.path`` for its siblings).

    Raises:
        ConfigError: when the benchmarks folder or the module is missing (an installed
            wheel has no benchmarks; they need a source checkout).
    """
    path = BENCHMARKS_DIR / f"{name}.py"
    if not path.is_file():
        raise ConfigError(
            f"{path} not found: the benchmarks need a source checkout of kpr-track "
            "(pip install -e .), with ../shared beside it"
        )
    if str(BENCHMARKS_DIR) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS_DIR))
    return importlib.import_module(name)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark's ``main`` with the remaining options."""
    module = load_benchmark(_MODULES[args.benchmark])
    return module.main(args.options, prog=f"kpr-track bench {args.benchmark}")
