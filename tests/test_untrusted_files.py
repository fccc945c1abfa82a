"""Untrusted files: nothing in the project unpickles arbitrary code, and weights found in
the cache or inside an installed package must have the registered sha256."""

from __future__ import annotations

import ast
import hashlib
import importlib
import sys
from pathlib import Path

import pytest

from kpr_track.errors import WeightsError
from kpr_track.weights import REGISTRY, WeightsEntry, resolve_weights

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("kpr_track", "trackers", "benchmarks", "tests")


def _unsafe_loads(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls that can run pickled code: ``torch.load`` without ``weights_only=True``,
    ``pickle.load(s)`` and ``numpy.load(..., allow_pickle=True)``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = ast.unparse(node.func.value)
        name = node.func.attr
        keywords = {k.arg: k.value for k in node.keywords}
        safe = isinstance(keywords.get("weights_only"), ast.Constant) and (
            keywords["weights_only"].value is True
        )
        if owner == "torch" and name == "load" and not safe:
            found.append((node.lineno, "torch.load without weights_only=True"))
        if owner in ("pickle", "cPickle", "dill") and name in ("load", "loads"):
            found.append((node.lineno, f"{owner}.{name}"))
        allow = keywords.get("allow_pickle")
        if name == "load" and isinstance(allow, ast.Constant) and allow.value is True:
            found.append((node.lineno, f"{owner}.load(allow_pickle=True)"))
    return found


def test_the_scanner_finds_unsafe_loads():
    code = (
        "torch.load(p)\n"
        "torch.load(p, weights_only=False)\n"
        "torch.load(p, map_location='cpu', weights_only=True)\n"
        "pickle.loads(b)\n"
        "np.load(p, allow_pickle=True)\n"
    )
    assert [line for line, _ in _unsafe_loads(ast.parse(code))] == [1, 2, 4, 5]


def test_no_unsafe_load_anywhere_in_the_project():
    files = [path for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50
    unsafe = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in files
        for line, what in _unsafe_loads(ast.parse(path.read_text(), str(path)))
    ]
    assert unsafe == []


def test_package_member_with_the_wrong_sha256_is_refused(tmp_path, monkeypatch):
    """A tampered copy inside an installed package is an error, never a silent load."""
    package = tmp_path / "site" / "kpr_tampered_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "w.bin").write_bytes(b"tampered weights")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    monkeypatch.setenv("KPR_TRACK_HOME", str(tmp_path / "empty-cache"))
    expected = hashlib.sha256(b"the official weights").hexdigest()
    entry = WeightsEntry("tampered", "w.bin", expected, ("kpr_tampered_pkg", "w.bin"))
    monkeypatch.setitem(REGISTRY, "tampered", entry)
    with pytest.raises(WeightsError) as error:
        resolve_weights("tampered", offline=True)
    message = str(error.value)
    assert str(package / "w.bin") in message and f"expected {expected}" in message
    assert "kpr_tampered_pkg" not in sys.modules  # found without importing it
