"""``kpr-track --help`` a newcomer can act on: one line per --reid model, every default
shown, option spellings as the README gives them, and no torch import to print it."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from kpr_track.cli import build_parser
from kpr_track.reid.registry import DEFAULT_REID, REID_MODELS

README = Path(__file__).resolve().parents[1] / "README.md"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_reid_help_is_one_line_per_model_with_the_default_marked_once(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no entry wraps
    text = _subcommands(build_parser())["track"].format_help()
    block = text[text.index("\n  --reid NAME") : text.index("\n  --reid-backend")]
    lines = [line.strip() for line in block.splitlines()]
    for name, entry in REID_MODELS.items():
        (line,) = [line for line in lines if line.startswith(f"{name}: ")]
        assert entry.description in line
    assert "none: " in block
    assert block.count("default") == 1 and f"{DEFAULT_REID}: " in block.split("(default)")[0]


def test_every_option_with_a_default_shows_it():
    for name, sub in _subcommands(build_parser()).items():
        for action in sub._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                shown = sub._get_formatter()._expand_help(action)
                assert "default" in shown, f"kpr-track {name} {action.option_strings[0]}"


def test_track_help_names_defaults_and_the_out_numbering():
    text = " ".join(_subcommands(build_parser())["track"].format_help().split())
    for expected in (
        "--device DEVICE torch device, e.g. cpu or cuda:0 (default: cpu)",
        "stop after N frames (default: every frame)",
        "<video name>-2, -3",
        "mot:PATH/det.txt",
        "gt:PATH/gt.txt",
    ):
        assert expected in text, expected


def test_readme_spells_the_detector_sources_as_the_help():
    readme = README.read_text()
    assert "mot:PATH/det.txt" in readme and not re.search(r"\bmot:det\.txt", readme)


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from kpr_track.cli import build_parser\n"
        "parser = build_parser(); parser.format_help()\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
