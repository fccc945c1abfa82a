"""kpr-track: multi-person tracking with Keypoint Promptable Re-Identification (KPR)."""

from typing import TYPE_CHECKING

from .detections import Detections
from .errors import ConfigError, InputError, KprTrackError, WeightsError

if TYPE_CHECKING:
    from .kpr import KPR

__version__ = "0.1.0"

__all__ = [
    "KPR",
    "Detections",
    "ConfigError",
    "InputError",
    "KprTrackError",
    "WeightsError",
    "__version__",
]


def __getattr__(name: str):
    # KPR pulls in torch: imported on first use so `import kpr_track` stays fast.
    if name == "KPR":
        from .kpr import KPR

        return KPR
    raise AttributeError(f"module 'kpr_track' has no attribute {name!r}")
