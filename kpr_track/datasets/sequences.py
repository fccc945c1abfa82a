"""Find the sequences of a benchmark split or a folder of videos.

Layouts (``ROOT`` is what ``kpr-track track-dataset`` is given):

- ``mot``: MOTChallenge split folder, e.g. ``MOT17/train``: one folder per sequence with
  ``seqinfo.ini`` and ``img1/``; ground truth ``gt/gt.txt`` and public detections
  ``det/det.txt`` when present. Result: ``<seq>.txt`` (MOTChallenge text), the layout
  TrackEval reads from a tracker's ``data/`` folder.
- ``posetrack21``: PoseTrack21 root with ``posetrack_data/<split>/<video>.json`` (or the
  PoseTrack18 name ``annotations/<split>/``) and the frames at ``ROOT/<file_name>`` of each
  image (``images/<split>/<video>/``). Result: ``<video>.json`` (PoseTrack21 layout with the
  ground truth's image ids), the layout of the official PoseTrack21 evaluation.
- ``videos``: every video file (``.mp4 .avi .mkv .mov``) under ``ROOT``, at any depth;
  no ground truth. Result: ``<video stem>.txt`` (MOTChallenge text, frames from 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InputError
from ..io.video import VIDEO_SUFFIXES

Format = Literal["mot", "posetrack21", "videos"]
FORMATS: tuple[Format, ...] = ("mot", "posetrack21", "videos")
# PoseTrack21 names its annotation folder posetrack_data/, PoseTrack18 annotations/.
POSETRACK_ANNOTATION_DIRS = ("posetrack_data", "annotations")


@dataclass(frozen=True)
class SequenceSpec:
    """One sequence of a dataset: where its frames are and where its result goes.

    Attributes:
        name: sequence name, unique in the dataset (the result file's stem).
        source: a video file or an image folder (see :func:`kpr_track.frames.open_frames`).
        result_name: the result file name in the output folder (``<name>.txt`` / ``.json``).
        posetrack_json: the PoseTrack21 video JSON listing the frames, else None.
        gt: ground truth for ``kpr-track eval`` (a sequence folder or a JSON), else None.
        seq_dir: the MOTChallenge sequence folder (holds ``det/`` and ``gt/``), else None.
    """

    name: str
    source: Path
    result_name: str
    posetrack_json: Path | None = None
    gt: Path | None = None
    seq_dir: Path | None = None


def find_sequences(root: str | Path, fmt: Format, split: str = "val") -> list[SequenceSpec]:
    """Every sequence of ``root`` in the layout ``fmt``, sorted by name.

    Args:
        root: the dataset folder (see the module docstring for each layout).
        fmt: ``"mot"``, ``"posetrack21"`` or ``"videos"``.
        split: the PoseTrack21 split folder (``train``, ``val``); unused by the others.

    Raises:
        InputError: ``root`` is missing or holds no sequence of that layout, or two
            sequences share a name.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    if fmt == "mot":
        specs = _mot_sequences(root)
    elif fmt == "posetrack21":
        specs = _posetrack_sequences(root, split)
    elif fmt == "videos":
        specs = _video_files(root)
    else:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    names: dict[str, Path] = {}
    for spec in specs:
        if spec.name in names:
            raise InputError(
                f"{spec.source}: sequence name {spec.name!r} also used by {names[spec.name]} "
                "(result files are named by sequence)"
            )
        names[spec.name] = spec.source
    return sorted(specs, key=lambda spec: spec.name)


def _mot_sequences(root: Path) -> list[SequenceSpec]:
    folders = sorted(p for p in root.iterdir() if (p / "seqinfo.ini").is_file())
    if not folders:
        raise InputError(
            f"{root}: no MOTChallenge sequence (a sub-folder with seqinfo.ini and img1/); "
            "expected a split folder such as MOT17/train"
        )
    return [
        SequenceSpec(
            name=folder.name,
            source=folder,
            result_name=f"{folder.name}.txt",
            gt=folder if (folder / "gt" / "gt.txt").is_file() else None,
            seq_dir=folder,
        )
        for folder in folders
    ]


def _posetrack_sequences(root: Path, split: str) -> list[SequenceSpec]:
    from ..evaluation.posetrack import read_posetrack_images

    folders = [root / name / split for name in POSETRACK_ANNOTATION_DIRS]
    found = [folder for folder in folders if folder.is_dir()]
    jsons = sorted(found[0].glob("*.json")) if found else []
    if not jsons:
        raise InputError(
            f"{root}: no PoseTrack video JSON in {' or '.join(str(f) for f in folders)}; "
            "expected the PoseTrack21 root (posetrack_data/<split>/ and images/<split>/)"
        )
    specs = []
    for path in jsons:
        first = read_posetrack_images(path)[0]["file_name"]
        specs.append(
            SequenceSpec(
                name=path.stem,
                source=root / Path(first).parent,
                result_name=f"{path.stem}.json",
                posetrack_json=path,
                gt=path,
            )
        )
    return specs


def _video_files(root: Path) -> list[SequenceSpec]:
    videos = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"{root}: no video file ({', '.join(VIDEO_SUFFIXES)}) in the folder")
    return [SequenceSpec(name=v.stem, source=v, result_name=f"{v.stem}.txt") for v in videos]
