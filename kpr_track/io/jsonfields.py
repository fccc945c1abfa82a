"""Checked reading of JSON documents: every problem is an :class:`InputError` on one line
naming the file and the JSON path of the field (e.g. ``annotations[3].bbox``).

Shared by the PoseTrack21 readers (evaluation) and the ReID split loader (training).
Integers must fit in int64 (they end up in NumPy arrays) and numbers must be finite
(JSON as written by Python may hold ``NaN`` and ``Infinity``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import InputError

_INT64 = 2**63


def load_json(path: Path, expect: type | tuple[type, ...]) -> Any:
    """The parsed document of ``path``, whose top level must be of type ``expect``."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read ({error})") from None
    except ValueError as error:  # JSONDecodeError, or an integer of over 4300 digits
        raise InputError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON (nested too deeply)") from None
    check_type(document, expect, path, "top level")
    return document


def get(mapping: dict, name: str, kind: type | tuple[type, ...], path: Path, key: str) -> Any:
    """``mapping[name]``, which must exist and be of type ``kind`` (``key``: its parent)."""
    where = f"{key}.{name}" if key else name
    if name not in mapping:
        raise InputError(f"{path}: {where}: required key missing (PoseTrack21 layout expected)")
    check_type(mapping[name], kind, path, where)
    return mapping[name]


def check_type(value: Any, kind: type | tuple[type, ...], path: Path, where: str) -> None:
    """Raise unless ``value`` is of type ``kind`` (booleans are never numbers)."""
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise InputError(f"{path}: {where}: expected {names}, got {type(value).__name__}")


def integer(value: Any, path: Path, where: str) -> int:
    """``value`` as an int: an integer or integral float within the int64 range."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(value, float):
        number = math.isfinite(value) and value.is_integer()
    if not number or not -_INT64 <= value < _INT64:
        raise InputError(f"{path}: {where}: expected an integer, got {value!r}"[:300])
    return int(value)


def numbers(values: Any, count: int, path: Path, where: str) -> list[float]:
    """``values`` as ``count`` finite floats."""
    if not isinstance(values, list) or len(values) != count:
        got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise InputError(f"{path}: {where}: expected a list of {count} numbers, got {got}")
    result = []
    for value in values:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            ok = ok and math.isfinite(float(value))
        except OverflowError:
            ok = False
        if not ok:
            raise InputError(f"{path}: {where}: expected finite numbers, got {value!r}"[:300])
        result.append(float(value))
    return result
