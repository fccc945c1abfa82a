"""KPR appearance models and the part-visibility distance.

:func:`build_reid` returns the appearance stage the CLI's ``--reid`` option names, from
the registry :data:`REID_MODELS` (:mod:`kpr_track.reid.registry`). Every stage carries a
:class:`DistanceCalibration` (``stage.calibration``), which the tracker reads instead of
a hand-set gate. Names are imported on first use, so ``import kpr_track.reid.registry``
(the CLI's ``--help``) loads no torch.
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it
_EXPORTS = {
    "DEFAULT_REID": "registry",
    "REID_BACKENDS": "registry",
    "REID_PRECISIONS": "registry",
    "REID_MODELS": "registry",
    "ReIDEntry": "registry",
    "build_reid": "registry",
    "reid_calibration": "registry",
    "reid_entry": "registry",
    "reid_help": "registry",
    "KPRAppearance": "appearance",
    "DistanceCalibration": "calibration",
    "fit_calibration": "calibration",
    "shipped_calibration": "calibration",
    "part_distance": "distance",
    "KPRModel": "model",
    "KPROutput": "model",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = sorted(_EXPORTS)
