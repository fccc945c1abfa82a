"""Identity-balanced batches: P identities x K samples (Hermans et al., arXiv 1703.07737)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


class PKSampler:
    """Draws batches of ``identities`` identities with ``instances`` samples each.

    Identities are drawn without replacement; an identity's samples without replacement
    when it has enough, else with replacement.

    Args:
        labels: `(N,)` identity index of every training sample.
        identities: P.
        instances: K (4 in KPR).

    Raises:
        InputError: when fewer than P identities have samples.
    """

    def __init__(self, labels: np.ndarray, identities: int, instances: int = 4) -> None:
        labels = np.asarray(labels)
        self.groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
        if len(self.groups) < identities:
            raise InputError(
                f"P x K sampling needs {identities} identities, the training set has "
                f"{len(self.groups)}; lower train.identities_per_batch"
            )
        self.identities = identities
        self.instances = instances

    def batch(self, rng: np.random.Generator) -> list[int]:
        """Indices of one batch, `P * K` of them, grouped by identity."""
        chosen = rng.choice(len(self.groups), self.identities, replace=False)
        indices: list[int] = []
        for group in (self.groups[i] for i in chosen):
            replace = len(group) < self.instances
            indices += rng.choice(group, self.instances, replace=replace).tolist()
        return indices
