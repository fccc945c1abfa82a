"""ReID evaluation on a query / gallery split: mAP and CMC with the part-visibility distance.

Distances are :func:`kpr_track.reid.distance.part_distance` over ``[foreground, parts]``
(one slot with visibility 1 for a global embedding). Two protocols (:data:`PROTOCOLS`):

- ``frame-gap`` (default for splits cut from MOTChallenge videos): for each query,
  gallery samples of the *same identity and camera* closer than ``min_frame_gap``
  frames are removed, the usual ReID rule (Market-1501 / torchreid drop same-camera
  matches) adapted to single videos, where neighbouring frames are near-duplicates of
  the query; ``min_frame_gap = inf`` gives the classic rule;
- ``occluded-posetrack``: KPR's Occluded-PoseTrack-ReID evaluation
  (``mot_inter_intra_video``): no gallery sample is excluded, so numbers compare with
  the published ones (KPR, ECCV 2024, Table 1).

Queries left without a true match are not scored (counted). mAP is the mean over
queries of average precision; rank-k the share of queries with a true match among the
k nearest gallery samples. Every metric is also given on the most occluded third of
the queries (occlusion = negative / target keypoint visibility, DESIGN.md §5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import ConfigError
from ..prompts import empty_prompts
from ..reid.calibration import part_evidence
from ..reid.crops import normalise_rgb255
from ..reid.distance import evidence_distance, part_distance, slot_distances
from ..reid.model import KPRModel

if TYPE_CHECKING:
    from ..reid.appearance import AppearanceModel
from .augment import read_crop, sample_prompts
from .crop_cache import CropRecord
from .occlusion import occlusion_score
from .protocols import PROTOCOLS

RANKS = (1, 5, 10)


@dataclass(frozen=True)
class Variant:
    """One row of the ablation table.

    Attributes:
        name: row label.
        model: the model to embed with: a :class:`KPRModel`, or a runtime stage's network
            (``KPRAppearance.net``: torch or onnxruntime), which gives embeddings and
            visibility of its own representation.
        prompts: feed keypoint prompts (else the "no prompt" tensor).
        representation: ``"parts"`` (holistic + parts) or ``"global"`` (trunk head).
        negatives: draw other people's keypoints as negative prompts.
        scoring: how pairs are ranked (:data:`SCORINGS`): ``"average"`` the plain
            part-visibility distance over shared slots; ``"holistic"`` slot 0 alone;
            ``"parts"`` the mean of the shared parts alone; ``"fused"`` the calibrated
            evidence of the model's calibration (:func:`~kpr_track.reid.distance.
            evidence_distance`).
    """

    name: str
    model: KPRModel | AppearanceModel
    prompts: bool = True
    representation: str = "parts"
    negatives: bool = True
    scoring: str = "average"


SCORINGS = ("average", "holistic", "parts", "fused")


def pair_distance(
    scoring: str,
    calibration,
    q_emb: np.ndarray,
    q_vis: np.ndarray,
    g_emb: np.ndarray,
    g_vis: np.ndarray,
) -> np.ndarray:
    """`(Q, G)` ranking distance of one :attr:`Variant.scoring`.

    Pairs without a shared part rank after every pair with one under ``"parts"``.

    Raises:
        ConfigError: on an unknown scoring, or ``"fused"`` without a calibration.
    """
    if scoring == "average":
        return part_distance(q_emb, q_vis, g_emb, g_vis)[0]
    if scoring == "holistic":
        return part_distance(q_emb[:, :1], q_vis[:, :1], g_emb[:, :1], g_vis[:, :1])[0]
    if scoring == "parts":
        distance, shared = slot_distances(q_emb, q_vis, g_emb, g_vis)
        share, mean = part_evidence(distance, shared)
        return np.where(share > 0, mean, 2.0)
    if scoring == "fused" and calibration is not None:
        return evidence_distance(calibration, q_emb, q_vis, g_emb, g_vis)
    raise ConfigError(
        f"scoring {scoring!r}: expected one of {SCORINGS} (fused needs a calibration)"
    )


def rank_metrics(
    distance: np.ndarray,
    query_ids: np.ndarray,
    gallery_ids: np.ndarray,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """mAP and CMC rank-1/5/10 of a distance matrix.

    Args:
        distance: `(Q, G)` float, smaller = more similar.
        query_ids: `(Q,)` identities.
        gallery_ids: `(G,)` identities.
        valid: `(Q, G)` bool, False for gallery samples ignored for that query.

    Returns:
        ``{"mAP", "rank1", "rank5", "rank10"}`` in [0, 1], plus ``"queries"`` (scored)
        and ``"queries_without_match"`` (skipped).
    """
    distance = np.asarray(distance, np.float64)
    valid = np.ones(distance.shape, bool) if valid is None else np.asarray(valid, bool)
    matches = np.asarray(query_ids)[:, None] == np.asarray(gallery_ids)[None, :]
    precisions, hits = [], {k: 0 for k in RANKS}
    for row in range(distance.shape[0]):
        keep = np.flatnonzero(valid[row])
        order = keep[np.argsort(distance[row, keep], kind="stable")]
        relevant = matches[row, order]
        if not relevant.any():
            continue
        first = int(np.argmax(relevant))
        for k in RANKS:
            hits[k] += first < k
        positions = np.flatnonzero(relevant) + 1
        precisions.append(float(np.mean(np.arange(1, len(positions) + 1) / positions)))
    scored = len(precisions)
    metrics = {"mAP": float(np.mean(precisions)) if scored else 0.0}
    metrics.update({f"rank{k}": hits[k] / scored if scored else 0.0 for k in RANKS})
    metrics["queries"] = scored
    metrics["queries_without_match"] = distance.shape[0] - scored
    return metrics


def valid_pairs(
    query: list[CropRecord],
    gallery: list[CropRecord],
    min_frame_gap: float,
    protocol: str = "frame-gap",
) -> np.ndarray:
    """`(Q, G)` bool mask of the gallery samples each query is ranked against.

    ``frame-gap``: False for same identity + camera closer than ``min_frame_gap`` frames;
    ``occluded-posetrack``: all True (module docstring).

    Raises:
        ConfigError: on an unknown protocol.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown ReID protocol {protocol!r}; expected one of {PROTOCOLS}")
    if protocol == "occluded-posetrack":
        return np.ones((len(query), len(gallery)), bool)
    same = np.array(
        [[q.identity == g.identity and q.camera == g.camera for g in gallery] for q in query],
        bool,
    ).reshape(len(query), len(gallery))
    if math.isinf(min_frame_gap):
        return ~same
    frames_q = np.array([q.frame for q in query], np.float64)
    frames_g = np.array([g.frame for g in gallery], np.float64)
    return ~(same & (np.abs(frames_q[:, None] - frames_g[None, :]) < min_frame_gap))


def most_occluded(records: list[CropRecord], share: float = 1 / 3) -> np.ndarray:
    """`(N,)` bool: the ``share`` of ``records`` with the highest occlusion score."""
    scores = np.array([occlusion_score(r.keypoints, r.negatives) for r in records])
    keep = np.zeros(len(records), bool)
    count = int(math.ceil(share * len(records)))
    keep[np.argsort(-scores, kind="stable")[:count]] = True
    return keep


def prepare_inputs(
    records: list[CropRecord],
    model: KPRModel | AppearanceModel,
    prompts: bool,
    negatives: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of ``model`` (its ``num_parts`` and ``prompt_size``) for cached crops, no
    augmentation.

    Returns:
        ``(images (B, 3, H, W) ImageNet-normalised, prompts (B, K + 2, H', W'))``; the
        prompts are the "no prompt" tensor when ``prompts`` is False, and carry no
        negative keypoints when ``negatives`` is False.
    """
    images = np.stack([read_crop(r) for r in records])
    size = images.shape[1:3]
    num_parts, prompt_size = model.num_parts, model.prompt_size(size)
    tensor = normalise_rgb255(torch.from_numpy(images).permute(0, 3, 1, 2).float())
    if not prompts:
        return tensor, empty_prompts(len(records), prompt_size, num_parts)
    none = np.zeros((0, 17, 3), np.float32)
    rendered = []
    for r in records:
        negative = r.negatives if negatives else none
        rendered.append(sample_prompts(r.keypoints, negative, size, num_parts, prompt_size))
    return tensor, torch.stack(rendered)


@torch.inference_mode()
def embed_records(
    variant: Variant, records: list[CropRecord], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Embed cached crops with one ablation variant.

    Returns:
        ``(embeddings (N, P, D) float32, visibility (N, P) float32)``; ``P = 1 + K`` for
        parts, 1 for the global embedding.
    """
    model = variant.model.eval() if isinstance(variant.model, KPRModel) else variant.model
    embeddings, visibility = [], []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        tensor, prompts = prepare_inputs(chunk, model, variant.prompts, variant.negatives)
        chunk_embeddings, chunk_visibility = represented(variant, model(tensor, prompts))
        embeddings.append(chunk_embeddings)
        visibility.append(chunk_visibility)
    return torch.cat(embeddings).numpy(), torch.cat(visibility).numpy()


def represented(variant: Variant, out) -> tuple[torch.Tensor, torch.Tensor]:
    """The variant's representation of one forward pass: ``(embeddings (B, P, D),
    visibility (B, P))``; the global embedding with visibility 1 for ``"global"``, every
    slot for ``"parts"``, the network's own outputs for a runtime (non-KPRModel) network."""
    if not isinstance(variant.model, KPRModel):
        return out[0], out[1]
    if variant.representation == "global":
        embedding = out.global_embedding[:, None]
        return embedding, torch.ones(embedding.shape[:2])
    return out.embeddings, out.visibility


def evaluate_variant(
    variant: Variant,
    query: list[CropRecord],
    gallery: list[CropRecord],
    min_frame_gap: float = 30.0,
    batch_size: int = 64,
    protocol: str = "frame-gap",
    holistic_too: bool = False,
    embedded: dict | None = None,
):
    """mAP / CMC of one variant on a query / gallery split (module docstring protocol).

    Args:
        holistic_too: also score the first (holistic) slot alone, from the same pass.
        embedded: a dict kept across calls: variants that differ only in ``scoring``
            embed once.

    Returns:
        :func:`rank_metrics` on all queries, plus the same keys prefixed ``occluded_``
        on the most occluded third of the queries (:func:`most_occluded`); with
        ``holistic_too`` a pair ``(all slots, holistic slot alone)`` of such dicts.
    """
    key = (id(variant.model), variant.prompts, variant.negatives, variant.representation)
    embedded = {} if embedded is None else embedded
    if key not in embedded:
        embedded[key] = (
            *embed_records(variant, query, batch_size),
            *embed_records(variant, gallery, batch_size),
        )
    q_emb, q_vis, g_emb, g_vis = embedded[key]
    query_ids = np.array([r.identity for r in query])
    gallery_ids = np.array([r.identity for r in gallery])
    valid = valid_pairs(query, gallery, min_frame_gap, protocol)
    hard = most_occluded(query)

    def score(distance: np.ndarray) -> dict[str, float]:
        metrics = rank_metrics(distance, query_ids, gallery_ids, valid)
        occluded = rank_metrics(distance[hard], query_ids[hard], gallery_ids, valid[hard])
        metrics.update({f"occluded_{key}": value for key, value in occluded.items()})
        return metrics

    calibration = variant.model.calibration
    metrics = score(pair_distance(variant.scoring, calibration, q_emb, q_vis, g_emb, g_vis))
    if not holistic_too:
        return metrics
    return metrics, score(pair_distance("holistic", None, q_emb, q_vis, g_emb, g_vis))


def ablation_variants(trained: KPRModel | None, baselines: bool = True) -> list[Variant]:
    """The rows of the ablation table.

    With a trained model: its calibrated fusion of the holistic slot and the shared
    parts (what ``--reid kpr`` ranks and tracks with), the fusion without negative
    prompts and without any prompt, the holistic slot alone, the parts alone and the
    plain average of the shared slots (the old ranking); then the untouched retail-0287
    embedding (always) and, with ``baselines``, the training-free pose-guided parts on
    retail-0287 with and without negative prompts, the untouched retail-0288 and the
    ImageNet MobileNetV2 models.
    """
    rows = []
    parts = 8 if trained is None else trained.num_parts
    if trained is not None:
        fused = "fused" if trained.calibration is not None else "average"
        rows += [
            Variant("KPR fused evidence (holistic + parts)", trained, True, scoring=fused),
            Variant("KPR fused, no negative prompts", trained, True, negatives=False,
                    scoring=fused),
            Variant("KPR fused, no prompts", trained, False, scoring=fused),
            Variant("KPR holistic slot alone", trained, True, scoring="holistic"),
            Variant("KPR parts alone", trained, True, scoring="parts"),
            Variant("KPR plain average of shared slots", trained, True),
        ]  # fmt: skip
    osnet = KPRModel(parts, attention="pose", trunk="osnet-retail-0287")
    rows.append(Variant("retail-0287 global embedding (untouched)", osnet, True, "global"))
    if not baselines:
        return rows
    small = KPRModel(parts, attention="pose", trunk="osnet-retail-0288")
    imagenet = KPRModel(parts, attention="pose", trunk="mobilenetv2-imagenet")
    rows += [
        Variant("pose-guided parts (retail-0287), negatives", osnet, True),
        Variant("pose-guided parts (retail-0287), no negatives", osnet, True, negatives=False),
        Variant("retail-0288 global embedding (untouched)", small, True, "global"),
        Variant("pose-guided parts (ImageNet MobileNetV2)", imagenet, True),
        Variant("global embedding (ImageNet MobileNetV2)", imagenet, True, "global"),
    ]
    return rows


TABLE_COLUMNS = ("mAP", "rank1", "rank5", "occluded_mAP", "occluded_rank1", "occluded_rank5")


def format_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    """Markdown table of ablation rows, metrics in percent (all queries, then the most
    occluded third)."""
    lines = [
        "| model | mAP | rank-1 | rank-5 | occluded mAP | occluded rank-1 | occluded rank-5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        cells = " | ".join(f"{100 * m[key]:.1f}" for key in TABLE_COLUMNS)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)
