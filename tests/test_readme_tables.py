"""README.md's result tables are the ones their results files give (benchmarks/readme_tables.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from kpr_track.cli.bench import load_benchmark
from kpr_track.errors import ConfigError

tables = load_benchmark("readme_tables")


@pytest.mark.parametrize("name", list(tables.TABLES))
def test_readme_holds_the_table_of_the_current_results_file(name):
    readme = tables.README.read_text()
    assert tables.current_block(name, readme) == tables.block(name), (
        f"README.md's {name!r} table is not the one {tables.TABLES[name].source} gives: run "
        "kpr-track bench readme"
    )


@pytest.fixture
def checkout(tmp_path):
    """A copy of README.md and of every table's results file."""
    for table in tables.TABLES.values():
        (tmp_path / table.source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tables.ROOT / table.source, tmp_path / table.source)
    shutil.copy(tables.README, tmp_path / "README.md")
    return tmp_path


def test_a_new_result_rewrites_its_table_with_command_and_commit(checkout):
    path = checkout / tables.TABLES["quality"].source
    report = json.loads(path.read_text())
    row = next(
        r for r in report["rows"] if (r["sequence"], r["tracker"]) == ("PETS09-S2L1", "motion")
    )
    row["HOTA"] = 0.9876
    report["command"] = "benchmarks/track_quality.py --sequences PETS09-S2L1"
    report["machine"]["commit"] = "0123456789ab"
    path.write_text(json.dumps(report))
    readme = (checkout / "README.md").read_text()
    updated = tables.render_readme(readme, checkout)
    block = tables.current_block("quality", updated)
    assert "| PETS09-S2L1 | public det.txt | 98.8 / " in block
    assert "`python benchmarks/track_quality.py --sequences PETS09-S2L1`" in block
    assert "commit `0123456789ab`" in block
    # Only the table changed: the text around every block is the README's.
    assert updated.replace(block, "") == readme.replace(tables.current_block("quality", readme), "")
    assert tables.main(["--readme", str(checkout / "README.md"), "--check"]) == 0  # real files


def test_check_fails_on_a_hand_edited_table(checkout, capsys):
    readme = checkout / "README.md"
    text = readme.read_text()
    block = tables.current_block("hosts", text)
    readme.write_text(text.replace(block, block.replace("| norfair | ", "| norfair | 1")))
    assert tables.main(["--readme", str(readme), "--check"]) == 1
    assert "table 'hosts' differs" in capsys.readouterr().out
    assert tables.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == text


def test_a_readme_without_the_markers_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected one <!-- results:speed -->"):
        tables.current_block("speed", "# no tables here\n")
