"""``kpr-track track-dataset ROOT --format mot|posetrack21|videos --out DIR``.

Tracks every sequence of a benchmark split or folder of videos and writes one result
file per sequence in the layout the benchmark's official evaluation reads
(:mod:`kpr_track.datasets`), skipping sequences an earlier run finished; then
``dataset_summary.json`` + ``dataset_summary.png`` and, when the sequences have ground
truth, the ``kpr-track eval`` table over the split (also saved as ``eval.json``).

Example::

    kpr-track track-dataset ../shared/data/MOT17-mini/train --format mot --out runs/mot17
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..datasets.run import TrackOptions
    from ..datasets.sequences import SequenceSpec

EVAL_FILE = "eval.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track-dataset`` sub-command."""
    from ..datasets.executors import DEFAULT_MAX_RETRIES
    from ..datasets.sequences import FORMATS
    from .track import add_link_option, add_tracking_options

    parser = subparsers.add_parser(
        "track-dataset",
        help="track every sequence of a benchmark split or folder of videos",
        description="Track every sequence of ROOT and write DIR/<sequence>.txt (MOTChallenge, "
        "videos) or DIR/<sequence>.json (PoseTrack21), ready for the official evaluation; "
        "sequences already in DIR are skipped. Ends with dataset_summary.json/.png and, "
        "with ground truth, the evaluation over the split (eval.json).",
        epilog="With --format mot, --det mot / --det gt (no path) use each sequence's "
        "det/det.txt / gt/gt.txt. A sequence that fails (bad input, its worker process "
        "killed, its Ray task out of retries) is reported on stderr and the others go on; "
        "the exit status is then 1, and running the command again tracks only the failed "
        "sequences.",
    )
    parser.add_argument("root", type=Path, help="dataset folder (see --format)")
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="mot: split folder of MOTChallenge sequences (seqinfo.ini + img1/); "
        "posetrack21: root with posetrack_data/<split>/*.json (or annotations/<split>/) and "
        "images/<split>/; videos: every video file under ROOT",
    )
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--split", default="val", help="PoseTrack21 split folder (default: val)")
    add_tracking_options(parser)
    add_link_option(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="sequences tracked at once on this machine "
        "in separate processes, torch threads divided among them (default: 1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per sequence (default: CPU cores / --workers; 1 with Ray, "
        "where it is also the CPUs each task asks for)",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: this machine; ray: tasks on the Ray cluster at --address "
        "(pip install 'kpr-track[ray]'; kpr-track installed on every node)",
    )
    parser.add_argument(
        "--address", help="Ray cluster address: auto, HOST:PORT or ray://HOST:10001"
    )
    parser.add_argument(
        "--shared-out",
        action="store_true",
        help="workers write results straight into --out (a folder every Ray node sees); "
        "default: results return to this process, which writes them",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        help="Ray: runs of a sequence's task after the first when its worker process or "
        f"node dies (default: {DEFAULT_MAX_RETRIES}); local workers are not retried, a rerun "
        "tracks the sequences that failed",
    )
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    parser.add_argument(
        "--no-filters",
        dest="filters",
        action="store_false",
        help="evaluate without the MOTChallenge distractor rules / PoseTrack21 pre-filters "
        "(as kpr-track eval --no-filters)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Track the sequences still missing from ``--out``, then report and evaluate."""
    from tqdm import tqdm

    from ..datasets.executors import run_jobs
    from ..datasets.report import dataset_summary, write_dataset_report
    from ..datasets.run import (
        SequenceJob,
        TrackOptions,
        default_threads,
        is_done,
        read_summary,
        sequence_detector,
    )
    from ..datasets.sequences import find_sequences
    from ..errors import ConfigError, InputError
    from ..weights import apply_offline_env
    from .track import check_tracking_options

    check_tracking_options(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.max_retries < 0:
        raise ConfigError(f"--max-retries must be >= 0, got {args.max_retries}")
    apply_offline_env()
    specs = find_sequences(args.root, args.format, args.split)
    for spec in specs:
        sequence_detector(args.det, spec)  # a wrong --det fails before any tracking
    options = TrackOptions.of(args)
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{out}: cannot create the results folder ({error.strerror})") from None
    done = [spec for spec in specs if is_done(out, spec)]
    threads = args.threads or (1 if args.executor == "ray" else default_threads(args.workers))
    jobs = [
        SequenceJob(spec, options, threads, out if args.shared_out else None)
        for spec in specs
        if spec not in done
    ]
    print(
        f"{len(specs)} sequences in {args.root}: {len(done)} already in {out}, {len(jobs)} to track"
    )
    summaries = [read_summary(out, spec) for spec in done]
    _note_other_settings(done, summaries, options, out)
    runs = run_jobs(jobs, args.executor, args.workers, args.address, args.max_retries)
    bar = tqdm(total=len(specs), initial=len(done), unit="seq", disable=args.no_progress)
    failed = _track(runs, out, summaries, bar)
    json_path, chart_path = write_dataset_report(dataset_summary(summaries), out)
    print(f"wrote {len(summaries)} results to {out}, {json_path.name}, {chart_path.name}")
    if failed:
        print(
            f"kpr-track track-dataset: {len(failed)} of {len(specs)} sequences failed "
            f"({', '.join(failed)}); run the same command again to track only them",
            file=sys.stderr,
        )
        return 1
    with_gt = [spec for spec in specs if spec.gt is not None]
    if with_gt and not args.no_eval:
        _evaluate(with_gt, out, args.filters)
    return 0


def _track(runs: Iterator, out: Path, summaries: list[dict], bar) -> list[str]:
    """Write each finished sequence (results the workers returned), add its summary to
    ``summaries`` and report each failed one on stderr as it ends; returns the failed
    sequences' names."""
    from contextlib import closing

    from ..datasets.run import SequenceFailure, write_result
    from ..errors import OutputError

    failed = []
    with closing(runs), bar:
        for result in runs:
            if isinstance(result, SequenceFailure):
                failed.append(result.spec.name)
                bar.write(f"{result.spec.name}: failed: {result.reason}", file=sys.stderr)
                continue
            if result.content is not None:
                try:
                    write_result(out, result.spec, result.content, result.summary)
                except OSError as error:
                    raise OutputError(f"{out}: cannot write {result.spec.name} ({error})") from None
            summaries.append(result.summary)
            bar.update()
            bar.set_postfix(seq=result.spec.name, fps=result.summary["fps"])
    return failed


def _note_other_settings(
    done: list[SequenceSpec], summaries: list[dict], options: TrackOptions, out: Path
) -> None:
    """Print a note when finished sequences were tracked with settings other than ``options``
    (they are kept, not tracked again)."""
    from dataclasses import asdict, replace

    from ..datasets.run import SUMMARY_DIR, sequence_detector

    stale = [
        summary["sequence"]
        for spec, summary in zip(done, summaries, strict=True)
        if summary["settings"] != asdict(replace(options, det=sequence_detector(options.det, spec)))
    ]
    if stale:
        print(
            f"note: {len(stale)} finished sequence(s) were tracked with other settings (first: "
            f"{stale[0]}, see {out / SUMMARY_DIR}); delete their results to track them again"
        )


def _evaluate(specs: list[SequenceSpec], out: Path, filters: bool) -> None:
    """``kpr-track eval`` over the split: per-sequence rows and the combined row."""
    import json

    from ..evaluation import evaluate
    from .eval import format_table

    results = evaluate([s.gt for s in specs], [out / s.result_name for s in specs], filters=filters)
    print(format_table(results))
    (out / EVAL_FILE).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out / EVAL_FILE}")
