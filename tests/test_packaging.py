"""The wheel is self-contained: presets and the tracker package ship inside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_configs_and_trackers(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("kpr_track-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for preset in (ROOT / "configs" / "trackers").glob("*.yaml"):
        assert f"kpr_track/configs/trackers/{preset.name}" in names
    assert "kpr_track/trackers/kpr_tracker.py" in names
    # Converted OMZ weights ship with their Apache-2.0 licence, and the calibrations.
    for asset in (
        "osnet_retail_0287.safetensors",
        "osnet_retail_0288.safetensors",
        "kpr_osnet0287_mot17_02.safetensors",
        "kpr_osnet0287_mot3.safetensors",
        "calibrations.json",
        "LICENSE-Apache-2.0.txt",
        "sample_pets09.mp4",  # the clip `kpr-track track` tracks without a source
    ):
        assert f"kpr_track/assets/{asset}" in names, asset
    assert not any(name.startswith("trackers/") for name in names), "must not shadow PyPI trackers"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kpr-track = kpr_track.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
