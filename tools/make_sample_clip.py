"""Write the sample clip that ships in the package: ``kpr_track/assets/sample_pets09.mp4``.

``kpr-track track`` without a source (and ``kpr-track`` alone) tracks this clip, so a
fresh install has a video to run on. It is the first :data:`FRAMES` frames of OpenCV's
sample ``vtest.avi`` (PETS 2009 S2L1 footage, 768 x 576, MPEG-4 part 2 at the 10 frames/s
its container declares), re-encoded unchanged in size as MPEG-4 part 2 (``mp4v``, the
codec every OpenCV wheel writes). Attribution: ``NOTICE``.

Source, either of (the same file, sha256 :data:`SOURCE_SHA256`):

- Debian's ``opencv-doc`` package: ``apt-get install opencv-doc``, then
  ``/usr/share/doc/opencv-doc/examples/data/vtest.avi`` (the default);
- this project's data: ``../shared/data/PETS09-S2L1/vtest.avi``.

Run from the repository root::

    python tools/make_sample_clip.py [SOURCE.avi]

The repository keeps the derived clip only, never the source video.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2

FRAMES = 150
SOURCE_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"
DEBIAN_SOURCE = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SHARED_SOURCE = Path("../shared/data/PETS09-S2L1/vtest.avi")
OUTPUT = Path(__file__).resolve().parents[1] / "kpr_track" / "assets" / "sample_pets09.mp4"


def make_clip(source: Path, output: Path, frames: int = FRAMES) -> int:
    """Re-encode the first ``frames`` frames of ``source`` into ``output`` (mp4v).

    Returns:
        The number of frames written.

    Raises:
        SystemExit: when the source is not the expected file or cannot be decoded.
    """
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source}: sha256 {digest}, expected OpenCV's vtest.avi {SOURCE_SHA256}")
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not capture.isOpened() or not writer.isOpened():
        raise SystemExit(f"cannot decode {source} or encode {output} with OpenCV")
    written = 0
    while written < frames:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(frame)
        written += 1
    capture.release()
    writer.release()
    if written < frames:
        raise SystemExit(f"{source}: only {written} frames decoded, expected {frames}")
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        help=f"vtest.avi (default: {DEBIAN_SOURCE}, else {SHARED_SOURCE})",
    )
    parser.add_argument("--out", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    args = parser.parse_args(argv)
    source = args.source or (DEBIAN_SOURCE if DEBIAN_SOURCE.is_file() else SHARED_SOURCE)
    written = make_clip(source, args.out)
    print(f"wrote {args.out}: {written} frames of {source}, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
