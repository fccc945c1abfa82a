"""The KPR training objective: GiLt loss plus the part attention loss (DESIGN.md §3).

- identity: cross-entropy with label smoothing on BNNeck features of the three holistic
  embeddings (global = the trunk head's, foreground, concatenation of the parts),
  summed over the three (BPBReID, WACV 2023, Eq. 6);
- triplet: batch-hard triplet (Hermans et al., arXiv 1703.07737) with the
  *part-averaged* distance, mean over parts of the Euclidean part distances
  (BPBReID, WACV 2023, Sec. 3.4), on the features before BatchNorm;
- part attention: per-pixel cross-entropy with label smoothing between the part logits
  and the keypoint-derived parsing labels, weighted ``part_weight`` (0.35 in KPR).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..reid.model import KPRTrainOutput


class IdentityHeads(nn.Module):
    """Identity classifiers on the holistic embeddings (kept outside the ReID model).

    Args:
        num_identities: number of training identities.
        global_dim: G, size of the trunk head's holistic embedding.
        embed_dim: D.
        num_parts: K.
    """

    def __init__(
        self, num_identities: int, global_dim: int, embed_dim: int, num_parts: int
    ) -> None:
        super().__init__()
        self.global_ = nn.Linear(global_dim, num_identities, bias=False)
        self.foreground = nn.Linear(embed_dim, num_identities, bias=False)
        self.parts = nn.Linear(embed_dim * num_parts, num_identities, bias=False)

    def forward(self, outputs: KPRTrainOutput) -> list[torch.Tensor]:
        """BNNeck features of :class:`KPRTrainOutput` -> three `(B, num_identities)` logits."""
        return [
            self.global_(outputs.global_bn),
            self.foreground(outputs.bn_features[:, 0]),
            self.parts(outputs.bn_features[:, 1:].flatten(1)),
        ]


class Losses(NamedTuple):
    """Scalar losses of one batch (``total`` is the one to back-propagate)."""

    total: torch.Tensor
    identity: torch.Tensor
    triplet: torch.Tensor
    part: torch.Tensor


def part_averaged_distance(parts: torch.Tensor) -> torch.Tensor:
    """`(B, K, D)` part features -> `(B, B)` mean over parts of Euclidean distances."""
    per_part = torch.cdist(parts.transpose(0, 1), parts.transpose(0, 1))  # (K, B, B)
    return per_part.mean(dim=0)


def batch_hard_triplet(distance: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss: hardest positive and negative per anchor.

    Args:
        distance: `(B, B)` pairwise distances.
        labels: `(B,)` identity indices.
        margin: the triplet margin.
    """
    same = labels[:, None] == labels[None, :]
    hardest_positive = distance.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_negative = distance.masked_fill(same, float("inf")).amin(dim=1)
    valid = torch.isfinite(hardest_negative) & torch.isfinite(hardest_positive)
    losses = F.relu(hardest_positive - hardest_negative + margin)
    return losses[valid].mean() if valid.any() else distance.sum() * 0.0


def kpr_losses(
    outputs: KPRTrainOutput,
    identity_logits: list[torch.Tensor],
    labels: torch.Tensor,
    parsing: torch.Tensor,
    *,
    margin: float = 0.3,
    label_smoothing: float = 0.1,
    part_weight: float = 0.35,
) -> Losses:
    """GiLt + part attention loss of one batch.

    Args:
        outputs: :meth:`KPRModel.train_outputs` of the batch.
        identity_logits: :class:`IdentityHeads` output.
        labels: `(B,)` int64 identity indices.
        parsing: `(B, h, w)` int64 parsing labels in ``0..K``.
    """
    identity = torch.stack(
        [F.cross_entropy(lg, labels, label_smoothing=label_smoothing) for lg in identity_logits]
    ).sum()
    triplet = batch_hard_triplet(part_averaged_distance(outputs.features[:, 1:]), labels, margin)
    part = F.cross_entropy(outputs.part_logits, parsing, label_smoothing=label_smoothing)
    return Losses(identity + triplet + part_weight * part, identity, triplet, part)
