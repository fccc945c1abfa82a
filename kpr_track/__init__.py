"""kpr-track: multi-person tracking with Keypoint Promptable Re-Identification (KPR)."""

from .detections import Detections
from .errors import ConfigError, InputError, KprTrackError, WeightsError

__version__ = "0.1.0"

__all__ = [
    "Detections",
    "ConfigError",
    "InputError",
    "KprTrackError",
    "WeightsError",
    "__version__",
]
