"""The sample clip that ships inside the package, tracked by ``kpr-track track`` without a
source: the first 150 frames of OpenCV's ``vtest.avi`` (PETS 2009 S2L1 footage, 768 x 576,
10 frames/s as its container declares), re-encoded by ``tools/make_sample_clip.py``
(attribution in ``NOTICE``)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from ..errors import InputError

SAMPLE_NAME = "sample_pets09.mp4"


def sample_video() -> Path:
    """Path of the shipped sample clip (``kpr_track/assets/sample_pets09.mp4``).

    Raises:
        InputError: when the installed package lacks the clip (a source checkout where
            ``tools/make_sample_clip.py`` was never run).
    """
    path = Path(str(importlib.resources.files("kpr_track") / "assets" / SAMPLE_NAME))
    if not path.is_file():
        raise InputError(
            f"{path}: the sample clip is missing from this installation; pass a VIDEO, or "
            "write the clip with python tools/make_sample_clip.py from a source checkout"
        )
    return path
