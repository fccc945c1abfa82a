"""YAML presets turned into typed dataclasses at the edge (CLI), with strict keys.

Inside the library objects take plain typed arguments; only the CLI reads YAML.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import yaml

from .errors import ConfigError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping.

    Raises:
        ConfigError: if the file is missing, is not valid YAML or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:  # ValueError: a bad date
        raise ConfigError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return data


def preset_path(kind: str, name_or_path: str) -> Path:
    """Resolve a preset name shipped in ``kpr_track/configs/<kind>/`` or a YAML file path.

    Raises:
        ConfigError: if it is neither an existing ``.yaml`` file nor a shipped preset name.
    """
    as_path = Path(name_or_path)
    if as_path.suffix in (".yaml", ".yml"):
        if not as_path.is_file():
            raise ConfigError(f"{as_path}: config file not found")
        return as_path
    shipped = available_presets(kind)
    if name_or_path not in shipped:
        raise ConfigError(
            f"unknown {kind} preset {name_or_path!r}; expected one of {sorted(shipped)} "
            f"or a path to a .yaml file"
        )
    return shipped[name_or_path]


def available_presets(kind: str) -> dict[str, Path]:
    """Shipped presets of one kind (e.g. ``"trackers"``): name -> path."""
    folder = importlib.resources.files("kpr_track.configs") / kind
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def from_mapping(cls: type[T], data: dict[str, Any], source: str) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types.

    Args:
        cls: a dataclass whose fields have defaults for every optional key.
        data: the YAML mapping.
        source: where ``data`` came from (file name), for error messages.

    Raises:
        ConfigError: naming ``source`` and the key on an unknown key, a missing required
            key, a NaN, or a value whose type does not match the field (ints are accepted
            for float fields).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; expected keys are {sorted(fields)}")
    hints = get_type_hints(cls)
    values = {}
    for name, value in data.items():
        kind = hints.get(name)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is float and value != value:
            raise ConfigError(f"{source}: key {name!r} must be a number, got NaN")
        if kind in (int, float, bool, str) and not isinstance(value, kind):
            raise ConfigError(f"{source}: key {name!r} must be {kind.__name__}, got {value!r}")
        if kind is int and isinstance(value, bool):
            raise ConfigError(f"{source}: key {name!r} must be int, got {value!r}")
        values[name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from None
