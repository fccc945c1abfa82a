"""Fit an appearance model's distance calibration on identity-labelled crops.

Every pair of distinct crops of the training subset is a same-identity or a
different-identity pair; their part-visibility distances (pairs with no mutually
visible slot left out) feed :func:`kpr_track.reid.calibration.fit_calibration`.
"""

from __future__ import annotations

import numpy as np

from ..reid.calibration import DistanceCalibration, fit_calibration
from ..reid.distance import part_distance
from .crop_cache import CropRecord
from .evaluate import Variant, embed_records


def calibrate_variant(
    variant: Variant, records: list[CropRecord], source: str, batch_size: int = 64
) -> DistanceCalibration:
    """Calibration of one model on identity-labelled crops.

    Args:
        variant: the model and representation to calibrate (as used when tracking).
        records: crops with identities (the training subset: never the test identities).
        source: provenance text stored in the calibration (data set and split).
        batch_size: crops per forward pass.

    Raises:
        ConfigError: with fewer than two same- or different-identity pairs.
    """
    embeddings, visibility = embed_records(variant, records, batch_size)
    distance, comparable = part_distance(embeddings, visibility, embeddings, visibility)
    identities = np.array([r.identity for r in records])
    same = identities[:, None] == identities[None, :]
    upper = np.triu(np.ones_like(same), k=1) & comparable
    return fit_calibration(
        distance[upper & same],
        distance[upper & ~same],
        f"{source}: {int((upper & same).sum())} same / {int((upper & ~same).sum())} different "
        "identity pairs",
    )
