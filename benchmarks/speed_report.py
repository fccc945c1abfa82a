"""speed.md: the speed benchmark's report, targets first."""

from __future__ import annotations

from common import markdown_table
from speed_e2e import E2E_RUNS
from speed_stages import TRACK_COUNTS

TEMPLATE = """\
# kpr-track speed on this CPU

`{command}`, {created}, {platform}, {cpus} CPUs, torch threads {threads}; load average {load}
at the end. The machine is shared with other jobs: compare ratios rather than absolute times.

## Targets (ratios measured in this run)

{targets_table}

## End to end

First frames of each sequence (models warmed up first); `kpr-track track` defaults
(`--det {e2e_det}`, `--reid {e2e_reid}`, `--reid-backend auto`: onnxruntime fp32 on the
CPU, `--tracker {e2e_tracker}`) and single changes to them: PETS09-S2L1 at **{e2e_fps:.2f}
FPS** with the defaults ({people:.1f} detections per frame), MOT20-01 at **{crowd_fps:.2f}
FPS** ({crowd_people:.1f} detections per frame). "x detector" is the run's FPS over the
yolo-pose 960 detector alone on the same PETS09 frames, timed at the start of the run's
round ({reference_fps} FPS in the rounds); "reid / detect" the appearance stage's time
over the detector's in the same run. With overlap, decoding and detection of the
next frame run in a worker thread (each stage with half the torch threads), so stage
times add up to more than the wall time; the CLI overlaps from 4 torch threads up.

{e2e_table}

## Stages

**Decode** (OpenCV, PETS09 768x576 AVI): {decode_ms:.1f} ms/frame ({decode_fps:.0f} FPS).

**Camera motion** (the trackers' warp estimate, `{cmc_estimator}`, part of the track stage;
{cmc_frames} consecutive PETS09 frames): {cmc_ms:.1f} ms/frame.

**Detection + pose** (PETS09 frames):

{detect_table}

**KPR appearance** (default `--reid {kpr_reid}`, 256x128 crops; the {crops} detections of
a real frame repeated up to the batch). Prompt rendering {render_ms:.2f} ms/crop, RoIAlign
crops {crop_ms:.2f} ms/crop (for the {crops}). Stage = `appearance(frame, detections)` timed
whole: prompts, crops and the model in chunks of {stage_batch}; model and bare trunk: one
forward of the whole batch, in PyTorch and in onnxruntime (the cached, checked export
`kpr-track track` runs by default; the trunk exported alike). Everything in this table is
timed in the same {kpr_rounds} interleaved rounds (medians), so the ratios share the
machine's drift. The ratios are times per crop.

{kpr_table}

**Association** (`kpr` tracker, T confirmed tracks x T detections of a synthetic crowd,
1 + 8 parts of 256-d, galleries of 5; ms per call). The fused cost computes the gate for
every pair and IoU, part distance and direction for the gated pairs only; "every pair" is
the part distance of all T x T pairs, for reference:

{assoc_table}

## Memory

Max resident set size (MiB) after each section: {memory}. Python-level peak of one
association at the largest T (tracemalloc; NumPy arrays, not torch tensors):
{tracemalloc:.0f} MiB. {long_run}
"""


def targets(report: dict) -> list[list[str]]:
    """The targets of issues 20 and 12: ``[target, measured, met]`` rows."""
    batches = report["kpr"]["batches"]
    largest = report["association"][TRACK_COUNTS[-1]]
    rows = [
        ["MOT20-01 defaults: appearance stage <= 35 % of the detector's time"]
        + _check(100 * report["mot20_01"]["reid_vs_detection"], "<=", 35.0),
        ["PETS09 defaults: end to end >= 0.85 x yolo-pose 960 detector FPS"]
        + _check(report["end_to_end"]["vs_yolo_pose_960_detector"], ">=", 0.85),
        ["KPR stage / bare trunk at batch 8 <= 1.3 (default runtime, onnxruntime)"]
        + _check(batches[8]["onnx_stage_vs_onnx_trunk"], "<=", 1.3),
        ["KPR stage / bare trunk at batch 8 <= 1.3 (PyTorch)"]
        + _check(batches[8]["stage_vs_trunk"], "<=", 1.3),
        ["issue 12: end to end (defaults) >= 2 x yolo-pose 960 detector FPS"]
        + _check(report["end_to_end"]["vs_yolo_pose_960_detector"], ">=", 2.0),
        ["issue 12: end to end (YOLOX fast path) >= 2 x yolo-pose 960 detector FPS"]
        + _check(report["end_to_end_yolox"]["vs_yolo_pose_960_detector"], ">=", 2.0),
        ["issue 12: KPR stage crops/s at batch 32 / at batch 8 >= 1 (PyTorch)"]
        + _check(
            batches[32]["kpr_stage_crops_per_s"] / batches[8]["kpr_stage_crops_per_s"], ">=", 1.0
        ),
        [f"issue 12: association at {TRACK_COUNTS[-1]} x {TRACK_COUNTS[-1]}: fused / lap <= 5"]
        + _check(largest["fused_cost_vs_assignment"], "<=", 5.0),
    ]
    if "long_run" in report:
        rows.append(
            ["issue 12: peak RSS, video three times through / once <= 1.10"]
            + _check(report["long_run"]["peak_rss_ratio"], "<=", 1.10)
        )
    return rows


def _check(value: float, relation: str, bound: float) -> list[str]:
    met = value >= bound if relation == ">=" else value <= bound
    return [f"{value:.2f}", "yes" if met else "no"]


def markdown_report(report: dict) -> str:
    """speed.md: one table per section, ratios next to absolute numbers."""
    e2e, kpr, machine = report["end_to_end"], report["kpr"], report["machine"]
    association = dict(report["association"])
    tracemalloc_mib = association.pop("tracemalloc_peak_mib")
    detect = [
        [k, f"{v['ms_per_frame']:.0f}", f"{v['fps']:.2f}"] for k, v in report["detection"].items()
    ]
    batches = [
        [b, f"{v['kpr_stage_crops_per_s']:.1f}", f"{v['kpr_model_crops_per_s']:.1f}"]
        + [
            f"{v['trunk_crops_per_s']:.1f}",
            f"{v['stage_vs_trunk']:.2f}",
            f"{v['onnx_stage_crops_per_s']:.1f}",
            f"{v['onnx_model_crops_per_s']:.1f}",
            f"{v['onnx_trunk_crops_per_s']:.1f}",
            f"{v['onnx_stage_vs_onnx_trunk']:.2f}",
            f"{v['int8_stage_crops_per_s']:.1f}",
        ]
        for b, v in kpr["batches"].items()
    ]
    assoc = [
        [t, f"{100 * v['gated_pairs_share']:.1f}", f"{v['distance_ms']:.2f}"]
        + [f"{v['fused_cost_ms']:.2f}", f"{v['assignment_ms']:.2f}"]
        + [f"{v['fused_cost_vs_assignment']:.1f}"]
        for t, v in association.items()
    ]
    long_run = report.get("long_run")
    long_run_text = (
        "Whole PETS09 video with the defaults, each run in its own process: peak RSS "
        + ", ".join(
            f"{v['frames']} frames {v['peak_rss_mib']:.0f} MiB"
            for k, v in long_run.items()
            if k.startswith("passes_")
        )
        + f" (ratio {long_run['peak_rss_ratio']:.3f})."
        if long_run
        else "Long run not measured (`--long-run`)."
    )
    runs = [report[key] for key in E2E_RUNS]
    stages = ("decode", "detect", "reid", "track")
    e2e_rows = [
        [run["sequence"], run["detector"].split(":")[0], _reid_label(run), run["runtime"]]
        + ["yes" if run["overlap"] else "no", run["frames"], f"{run['detections_per_frame']:.1f}"]
        + [f"{run['crops_per_frame']:.1f}" if "crops_per_frame" in run else "-"]
        + [f"{run['fps']:.2f}", f"{run['vs_yolo_pose_960_detector']:.2f}"]
        + [f"{run['ms_per_frame'].get(stage, 0.0) * run['frames'] / 1000:.2f}" for stage in stages]
        + [f"{100 * run['reid_vs_detection']:.0f} %"]
        for run in runs
    ]
    return TEMPLATE.format(
        command=report["command"],
        created=report["created"],
        platform=machine["platform"],
        cpus=machine["cpu_count"],
        threads=report["threads"],
        load=machine["load_average_1_5_15"],
        targets_table=markdown_table(["target", "measured", "met"], targets(report)),
        people=e2e["detections_per_frame"],
        crowd_fps=report["mot20_01"]["fps"],
        crowd_people=report["mot20_01"]["detections_per_frame"],
        e2e_det=e2e["detector"],
        e2e_reid=e2e["reid"],
        e2e_tracker=e2e["tracker"],
        e2e_fps=e2e["fps"],
        reference_fps=" / ".join(f"{fps:.2f}" for fps in report["detector_alone_fps_of_rounds"]),
        e2e_table=markdown_table(
            ["sequence", "detector", "--reid", "runtime", "overlap", "frames", "people/frame"]
            + ["crops/frame"]
            + ["FPS", "x detector"]
            + [f"{stage} s" for stage in stages]
            + ["reid / detect"],
            e2e_rows,
        ),
        decode_ms=report["decode"]["ms_per_frame"],
        decode_fps=report["decode"]["fps"],
        cmc_estimator=report["camera_motion"]["estimator"],
        cmc_frames=report["camera_motion"]["frames"],
        cmc_ms=report["camera_motion"]["ms_per_frame"],
        detect_table=markdown_table(["stage", "ms/frame", "FPS"], detect),
        kpr_reid=kpr["reid"],
        crops=kpr["detections_in_frame"],
        render_ms=kpr["prompt_render_ms_per_crop"],
        crop_ms=kpr["crop_ms_per_crop"],
        stage_batch=kpr["stage_batch_size"],
        kpr_rounds=kpr["interleaved_rounds"],
        kpr_table=markdown_table(
            ["batch", "torch stage crops/s", "torch model crops/s", "torch trunk crops/s"]
            + ["torch stage / trunk", "ONNX stage crops/s", "ONNX model crops/s"]
            + ["ONNX trunk crops/s", "ONNX stage / trunk", "int8 stage crops/s"],
            batches,
        ),
        assoc_table=markdown_table(
            ["T", "gated pairs %", "part distance, every pair", "fused cost"]
            + ["assignment (lap)", "fused / assignment"],
            assoc,
        ),
        memory=", ".join(f"{k} {v:.0f}" for k, v in report["peak_rss_mib_after"].items()),
        tracemalloc=tracemalloc_mib,
        long_run=long_run_text,
    )


def _reid_label(run: dict) -> str:
    """The run's ``--reid``, marked when embeddings on demand were off."""
    every = run.get("tracker_settings", {}).get("embed_refresh_s") == 0
    return f"{run['reid']} (every crop)" if every else run["reid"]
