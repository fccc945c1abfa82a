"""Image-folder sequences: a folder of frames, a MOTChallenge sequence, a PoseTrack21 video.

One reader for the three layouts benchmarks ship their frames in:

- **a folder of images** (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``), in the order of the
  number in each file name; frame number = that number, plus 1 when the folder counts
  from 0 (PoseTrack names its frames ``000000.jpg`` ...), since MOTChallenge frames start
  at 1; 25 frames per second.
- **a MOTChallenge sequence folder** (``seqinfo.ini`` + its ``imDir``, images named by
  frame number with ``imExt``): frame rate from ``frameRate``.
- **a PoseTrack21 video**: its image folder plus its ``posetrack_data/<split>/<video>.json``.
  Frames are the JSON's ``images`` in file order (frame n = the n-th image, as the
  PoseTrack21 evaluation counts), each found in the folder by the base name of its
  ``file_name``; the image records (``id``, ``file_name``, ``frame_id``, ``vid_id``,
  ``is_labeled``, ignore regions) go into ``tracks.json`` unchanged, so results carry the
  ground truth's image ids. An image of the folder that the JSON does not list is an
  error, as is a listed image that is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .video import DecodeReport, VideoInfo, VideoReader

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_FPS = 25.0
# Keys of a PoseTrack21 image record that results repeat (DESIGN.md section 5).
POSETRACK_IMAGE_KEYS = (
    "id",
    "file_name",
    "frame_id",
    "vid_id",
    "is_labeled",
    "ignore_regions_x",
    "ignore_regions_y",
)


class ImageFolderReader:
    """Iterate over the frames of an image folder as `(H, W, 3)` BGR uint8 arrays.

    Args:
        folder: a folder of images, a MOTChallenge sequence folder (``seqinfo.ini``) or,
            with ``posetrack_json``, a PoseTrack21 video's image folder.
        posetrack_json: the PoseTrack21 video JSON that lists the folder's frames.
        max_frames: only the first ``max_frames`` frames (``None``: all).

    Attributes:
        info: size of the first frame, frame rate, number of frames.
        files: the image files, in reading order.
        frame_ids: frame number of each frame, in reading order (see the module docstring).
        images: frame number -> the image record ``tracks.json`` writes for it.
        frame_id: number of the frame last yielded (the same contract as
            :class:`~kpr_track.video.VideoReader`).
        decode: :class:`~kpr_track.video.DecodeReport` of the frames read.

    Raises:
        InputError: no images, a file name without a number, two files with the same
            number, an image that cannot be read, or a folder and JSON that disagree.
    """

    def __init__(
        self,
        folder: str | Path,
        posetrack_json: str | Path | None = None,
        max_frames: int | None = None,
    ) -> None:
        self.path = Path(folder)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: image folder not found")
        fps = DEFAULT_FPS
        if posetrack_json is not None:
            files, records = _posetrack_frames(self.path, Path(posetrack_json))
            frame_ids = list(range(1, len(files) + 1))
        else:
            if (self.path / "seqinfo.ini").is_file():
                files, fps = _mot_sequence_files(self.path)
            else:
                files = _numbered_images(self.path, IMAGE_SUFFIXES)
            frame_ids = _frame_numbers(files)
            records = [
                _image_record(self.path, frame, file)
                for frame, file in zip(frame_ids, files, strict=True)
            ]
        self.files = files[:max_frames]
        self.frame_ids = frame_ids[:max_frames]
        self.images = dict(zip(self.frame_ids, records[:max_frames], strict=True))
        first = _read_image(self.files[0])
        self.info = VideoInfo(
            path=self.path,
            width=first.shape[1],
            height=first.shape[0],
            fps=fps,
            num_frames=len(self.files),
        )
        self.frame_id = 0
        self.decode = DecodeReport(declared_frames=len(self.files))

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the frames in order (:attr:`frame_id` tells each one's number)."""
        for frame_id, file in zip(self.frame_ids, self.files, strict=True):
            frame = _read_image(file)
            self.frame_id = frame_id
            self.decode.decoded_frames += 1
            yield frame

    def __len__(self) -> int:
        return len(self.files)


def open_frames(
    path: str | Path, posetrack_json: str | Path | None = None, max_frames: int | None = None
) -> VideoReader | ImageFolderReader:
    """A reader for a video file or an image folder (see the module docstring).

    Raises:
        InputError: ``posetrack_json`` given with a video file, or what the reader raises.
    """
    path = Path(path)
    if path.is_dir():
        return ImageFolderReader(path, posetrack_json, max_frames)
    if posetrack_json is not None:
        raise InputError(
            f"{path}: --posetrack-json needs the video's image folder (images/<split>/<video>/), "
            "not a video file"
        )
    return VideoReader(path, max_frames=max_frames)


def _read_image(path: Path) -> np.ndarray:
    frame = cv2.imread(str(path))
    if frame is None:
        raise InputError(f"{path}: image missing or unreadable")
    return frame


def _frame_numbers(files: list[Path]) -> list[int]:
    """Frame number of each file: the number in its name, + 1 when the first is 0."""
    numbers = [_number_in_name(file) for file in files]
    shift = 1 if numbers[0] == 0 else 0
    return [number + shift for number in numbers]


def _image_record(folder: Path, frame: int, file: Path) -> dict:
    """The ``tracks.json`` image record of a frame read from ``folder`` (no ground truth)."""
    return {
        "id": frame,
        "file_name": file.relative_to(folder.parent).as_posix(),
        "frame_id": frame,
        "vid_id": folder.name,
    }


def _number_in_name(path: Path) -> int:
    """The last run of digits in the file name's stem."""
    found = re.findall(r"\d+", path.stem)
    if not found:
        raise InputError(f"{path}: expected a frame number in the file name (e.g. 000001.jpg)")
    return int(found[-1])


def _numbered_images(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The images of ``folder`` sorted by the number in their names."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    if not files:
        raise InputError(f"{folder}: no images ({', '.join(suffixes)}) in the folder")
    files.sort(key=_number_in_name)
    for before, after in zip(files, files[1:], strict=False):
        if _number_in_name(before) == _number_in_name(after):
            raise InputError(f"{after}: frame number {_number_in_name(after)} also in {before}")
    return files


def _mot_sequence_files(seq_dir: Path) -> tuple[list[Path], float]:
    """Images of a MOTChallenge sequence folder and its frame rate (``seqinfo.ini``)."""
    from ..evaluation.mot import read_seqinfo

    info = read_seqinfo(seq_dir)
    image_dir = seq_dir / info.get("imDir", "img1")
    if not image_dir.is_dir():
        raise InputError(f"{seq_dir / 'seqinfo.ini'}: imDir: folder {image_dir} not found")
    rate = info.get("frameRate", str(DEFAULT_FPS))
    try:
        fps = float(rate)
    except ValueError:
        fps = 0.0
    if not fps > 0:
        raise InputError(
            f"{seq_dir / 'seqinfo.ini'}: frameRate: expected a number > 0, got {rate!r}"
        )
    return _numbered_images(image_dir, (info.get("imExt", ".jpg").lower(),)), fps


def _posetrack_frames(folder: Path, json_path: Path) -> tuple[list[Path], list[dict]]:
    """The folder's images in the JSON's order and the JSON's image records."""
    from ..evaluation.posetrack import read_posetrack_images

    images = read_posetrack_images(json_path)
    files, records = [], []
    for index, image in enumerate(images):
        name = Path(image["file_name"])
        if name.parent.name and name.parent.name != folder.name:
            raise InputError(
                f"{json_path}: images[{index}].file_name: {name} is a frame of video folder "
                f"{name.parent.name}/, not of {folder}"
            )
        file = folder / name.name
        if not file.is_file():
            raise InputError(
                f"{json_path}: images[{index}].file_name: {image['file_name']} not found in "
                f"{folder}"
            )
        files.append(file)
        records.append({key: image[key] for key in POSETRACK_IMAGE_KEYS if key in image})
    listed = {file.name for file in files}
    extra = sorted(
        p.name
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in listed
    )
    if extra:
        raise InputError(
            f"{folder}: {len(extra)} image(s) not listed in {json_path} 'images' "
            f"(first: {extra[0]}); expected the folder of that video"
        )
    return files, records
