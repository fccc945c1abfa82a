"""``kpr-track tune SEQUENCE...``: search tracker settings on labelled sequences (Optuna)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` sub-command."""
    from .track import add_link_option, add_tracking_options

    parser = subparsers.add_parser(
        "tune",
        help="search tracker settings on labelled sequences and write the best as a preset",
        description="Search the tracker settings of --tracker (the starting preset) on "
        "labelled sequences with Optuna (TPE), maximising HOTA, IDF1 or a weighted mix; "
        "detections are computed once per sequence and cached. The study is kept in an "
        "SQLite file and continues when the command is run again. Writes the best "
        "settings as a preset YAML (use it with --tracker). Needs: pip install "
        "'kpr-track[tune]'.",
    )
    parser.add_argument(
        "sequences",
        nargs="+",
        metavar="SEQUENCE",
        help="MOTChallenge sequence folders (seqinfo.ini + gt/gt.txt), or dataset roots in "
        "the --format layout (a MOT split folder, a PoseTrack21 root)",
    )
    parser.add_argument(
        "--format", default="mot", choices=("mot", "posetrack21"), help="dataset root layout"
    )
    parser.add_argument("--split", default="val", help="PoseTrack21 split (default: val)")
    parser.add_argument(
        "--objective", default="hota", choices=("hota", "idf1", "mix"), help="maximised metric"
    )
    parser.add_argument(
        "--hota-weight",
        type=float,
        default=0.5,
        help="w of --objective mix: w HOTA + (1 - w) IDF1 (default: 0.5)",
    )
    parser.add_argument("--trials", type=int, default=50, help="finished trials to reach")
    parser.add_argument(
        "--study",
        type=Path,
        default=Path("runs/tune/study.sqlite"),
        help="Optuna study file (SQLite); an existing one is continued",
    )
    parser.add_argument("--study-name", default="kpr-track", help="study name in the file")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/tune/best.yaml"), help="best preset YAML"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("runs/tune/cache"), help="detection cache folder"
    )
    parser.add_argument(
        "--frame-steps",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="tune on each MOT sequence at every N-th frame too (frame rate / N), e.g. "
        "'1 4' for a 30 fps sequence as 30 and 7.5 fps cameras (default: 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument(
        "--keep",
        nargs="+",
        default=[],
        metavar="NAME",
        help="settings not searched, kept at the starting preset's values (e.g. the score "
        "thresholds: high_score low_score new_track_score, which depend on the scene's "
        "clutter)",
    )
    add_tracking_options(parser)
    add_link_option(
        parser,
        help="score the linked, gap-filled tracks (what kpr-track VIDEO writes) rather than "
        "the online ones (default: the preset's link.enabled, with appearance only)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Cache the detections, run the study, write the best preset, print the result."""
    import dataclasses

    from ..datasets.run import sequence_detector
    from ..datasets.sequences import SequenceSpec, find_sequences
    from ..errors import ConfigError, InputError
    from ..pipeline import build_pipeline
    from ..trackers import load_tracker
    from ..trackers.link import load_link_config
    from ..tune import Study, best_settings, optimise, write_preset
    from ..tune_cache import load_or_compute, thinned
    from ..weights import apply_offline_env
    from .track import check_tracking_options

    check_tracking_options(args)
    apply_offline_env()
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("kpr-track tune needs Optuna: pip install 'kpr-track[tune]'") from None
    specs: list[SequenceSpec] = []
    for path in map(Path, args.sequences):
        if (path / "seqinfo.ini").is_file():
            specs.append(_mot_sequence(path))
        else:
            specs += find_sequences(path, args.format, args.split)
    specs = list({spec.source: spec for spec in specs}.values())
    unlabelled = [spec.name for spec in specs if spec.gt is None]
    if unlabelled:
        raise InputError(f"kpr-track tune needs ground truth; none for {', '.join(unlabelled)}")
    steps = sorted(set(args.frame_steps))
    if steps[0] < 1:
        raise ConfigError(f"--frame-steps must be >= 1, got {args.frame_steps}")
    base_tracker = load_tracker(args.tracker)
    base = {
        f.name: getattr(base_tracker.config, f.name)
        for f in dataclasses.fields(base_tracker.config)
    }
    appearance = base["appearance_weight"] > 0
    link = load_link_config(args.tracker)
    if args.link and not appearance:
        raise ConfigError(
            f"--link: the {args.tracker!r} preset tracks without appearance "
            "(appearance_weight 0); linking needs it"
        )
    linked = appearance and (link.enabled if args.link is None else args.link)
    built = {}
    sequences = []
    for spec in specs:
        options = dataclasses.replace(
            _options(args, appearance), det=sequence_detector(args.det, spec)
        )

        def build_stages(frame_rate, size, options=options):
            pipeline = build_pipeline(options.for_source(*size), frame_rate)
            built["calibration"] = getattr(pipeline.appearance, "calibration", None)
            return pipeline, appearance

        settings = {
            "det": options.det,
            "imgsz": args.imgsz,
            "conf": args.conf,
            "reid": options.reid if appearance else None,
            "max_frames": args.max_frames,
        }
        cached = load_or_compute(
            spec, settings, build_stages, args.cache_dir, progress=not args.no_progress
        )
        sequences += [thinned(cached, step, args.cache_dir / "thinned") for step in steps]
    calibration = built.get("calibration")
    if appearance and calibration is None:
        from ..reid.registry import reid_calibration

        calibration = reid_calibration(args.reid)
    study = Study(
        base=base,
        storage=args.study,
        name=args.study_name,
        objective=args.objective,
        weight=args.hota_weight,
        trials=args.trials,
        appearance=appearance,
        seed=args.seed,
        link=link if linked else None,
        keep=tuple(args.keep),
    )
    found = optimise(study, sequences, calibration, progress=not args.no_progress)
    best = found.best_trial
    header = [
        f"Tuned by kpr-track tune from the {args.tracker!r} preset on "
        f"{', '.join(s.spec.name for s in sequences)} (detector {args.det}); objective "
        f"{args.objective} = {best.value:.4f} of the {'linked' if linked else 'online'} tracks "
        f"(trial {best.number} of {len(found.trials)}).",
        f"Study: {args.study} ({args.study_name}). Units: see configs/trackers/kpr.yaml.",
    ]
    if args.keep:
        header.append(f"Not searched (the starting preset's values): {', '.join(args.keep)}.")
    path = write_preset(args.out, best_settings(found, base), header, link)
    attrs = best.user_attrs
    print(
        f"best trial {best.number}: {args.objective} {best.value:.4f} (HOTA "
        f"{attrs.get('HOTA', float('nan')):.4f}, IDF1 {attrs.get('IDF1', float('nan')):.4f}); "
        f"wrote {path}"
    )
    return 0


def _mot_sequence(path: Path):
    """One MOTChallenge sequence folder; frames from its image folder or, without one, its
    video file (the layout of ``benchmarks``' sequences)."""
    from ..datasets.sequences import SequenceSpec
    from ..evaluation.mot import read_seqinfo
    from ..io.video import VIDEO_SUFFIXES

    source = path
    if not (path / read_seqinfo(path).get("imDir", "img1")).is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        source = videos[0] if len(videos) == 1 else path
    return SequenceSpec(
        name=path.name,
        source=source,
        result_name=f"{path.name}.txt",
        gt=path if (path / "gt" / "gt.txt").is_file() else None,
        seq_dir=path,
    )


def _options(args: argparse.Namespace, appearance: bool):
    from ..pipeline import TrackOptions

    return TrackOptions(
        det=args.det,
        tracker=args.tracker,
        reid=args.reid if appearance else "none",
        reid_backend=args.reid_backend,
        imgsz=args.imgsz,
        conf=args.conf,
        device=args.device,
        max_frames=args.max_frames,
    )
