"""Fit an appearance model's distance calibration on identity-labelled crops.

The calibration is fitted on the statistic the tracker compares
(:class:`~kpr_track.trackers.KPRTracker` keeps a gallery of up to ``G`` embeddings per
slot and takes, per slot, the minimum distance to it): every sampled crop of a camera is
a query against a gallery of each identity of that camera, the ``G`` crops of the
identity nearest in time but at least ``gap`` frames from the query (the query's own
neighbours excluded: what a track re-found after a short occlusion holds); per slot the
minimum distance over the gallery crops showing that slot, and the slot counts as shared
when the query and at least one gallery crop show it. Same / different identity pairs
feed :func:`kpr_track.reid.calibration.fit_calibration` with the part evidence
(:func:`~kpr_track.reid.calibration.part_evidence`).

For learned parts, the visibility threshold (:attr:`~kpr_track.reid.model.KPRModel.
min_part_area`) is chosen here too, on the same training crops: the candidate share of
feature-map cells whose calibration, fitted on half of the identities, gives the lowest
balanced log-loss on the other half.
"""

from __future__ import annotations

import numpy as np
import torch

from ..reid.calibration import DistanceCalibration, fit_calibration, part_evidence
from ..reid.model import part_areas
from .crop_cache import CropRecord
from .evaluate import Variant, prepare_inputs, represented

GALLERY_SIZE = 5  # the tracker's default gallery_size (trackers/config.py)
MIN_GAP = 5  # frames between a query and its gallery
MAX_QUERIES = 400  # sampled queries per camera (seeded)
MAX_PER_IDENTITY = 24  # crops kept per identity, evenly spaced in time (embedding cost)
# Candidate visibility thresholds, in cells of a 16 x 8 map (1 cell = KPR's argmax rule).
AREA_CELLS = (1, 2, 4, 6, 8, 12, 16)


def embed_with_areas(
    variant: Variant, records: list[CropRecord], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Embeddings, visibility and the part areas of cached crops in one pass.

    Returns:
        ``(embeddings (N, P, D), visibility (N, P), areas (N, K) or (N, 0), cells)``
        float32 arrays; ``areas`` (:func:`kpr_track.reid.model.part_areas`, shares of
        the ``cells`` feature-map cells) only for learned attention.
    """
    model = variant.model.eval()
    captured: list[torch.Tensor] = []
    learned = model.attention == "learned" and variant.representation == "parts"
    hook = model.part_head.register_forward_hook(lambda _m, _i, out: captured.append(out))
    embeddings, visibility, areas = [], [], []
    captured_size: tuple[int, ...] = ()
    try:
        with torch.inference_mode():
            for start in range(0, len(records), batch_size):
                chunk = records[start : start + batch_size]
                images, prompts = prepare_inputs(chunk, model, variant.prompts, variant.negatives)
                chunk_embeddings, chunk_visibility = represented(variant, model(images, prompts))
                embeddings.append(chunk_embeddings)
                visibility.append(chunk_visibility)
                if learned:
                    areas.append(part_areas(captured[-1]))
                    captured_size = tuple(captured[-1].shape[-2:])
                captured.clear()
    finally:
        hook.remove()
    area = torch.cat(areas).numpy() if learned else np.zeros((len(records), 0), np.float32)
    cells = int(np.prod(captured_size)) if captured_size else 0
    return torch.cat(embeddings).numpy(), torch.cat(visibility).numpy(), area, cells


def evenly_spaced(records: list[CropRecord], per_identity: int) -> list[CropRecord]:
    """At most ``per_identity`` crops of each identity, evenly spaced in frame order
    (order of ``records`` kept)."""
    by_identity: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_identity.setdefault(record.identity, []).append(index)
    keep = []
    for indices in by_identity.values():
        indices.sort(key=lambda i: records[i].frame)
        picks = np.linspace(0, len(indices) - 1, min(per_identity, len(indices))).round()
        keep += [indices[int(i)] for i in np.unique(picks)]
    return [records[i] for i in sorted(keep)]


def gallery_pairs(
    embeddings: np.ndarray,
    visibility: np.ndarray,
    records: list[CropRecord],
    gallery_size: int = GALLERY_SIZE,
    gap: int = MIN_GAP,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Query-vs-identity-gallery pairs with per-slot minimum distances (module docstring).

    Args:
        embeddings: `(N, P, D)` L2-normalised.
        visibility: `(N, P)` in {0, 1}.
        records: the ``N`` crops (identity, camera, frame).
        gallery_size: ``G`` crops per identity gallery.
        gap: frames between the query and every gallery crop.
        seed: seed of the query sampling (at most :data:`MAX_QUERIES` per camera).

    Returns:
        ``(slot_distance (M, P) float64 in [0, 1] (1 where not shared), shared (M, P)
        bool, same (M,) bool, group (M,) int)``; ``group`` numbers the query's identity
        (for splits by identity).
    """
    rng = np.random.default_rng(seed)
    identities = np.array([r.identity for r in records])
    group_of = {name: i for i, name in enumerate(sorted(set(identities)))}
    cameras = np.array([r.camera for r in records])
    frames = np.array([r.frame for r in records], np.float64)
    visible = visibility > 0.5
    out: list[tuple[np.ndarray, ...]] = []
    for camera in sorted(set(cameras)):
        members = np.flatnonzero(cameras == camera)
        emb = embeddings[members].transpose(1, 0, 2)  # (P, n, D)
        gram = np.einsum("pid,pjd->pij", emb, emb)
        distance = np.sqrt(np.clip(2.0 - 2.0 * gram, 0.0, 4.0)) / 2.0  # (P, n, n)
        ids, vis, when = identities[members], visible[members], frames[members]
        queries = np.arange(len(members))
        if len(queries) > MAX_QUERIES:
            queries = np.sort(rng.choice(len(members), MAX_QUERIES, replace=False))
        for identity in np.unique(ids):
            crops = np.flatnonzero(ids == identity)
            apart = np.abs(when[crops][None] - when[queries][:, None])  # (Q, C)
            apart[apart < gap] = np.inf
            order = np.argsort(apart, axis=1, kind="stable")[:, :gallery_size]  # (Q, G')
            usable = np.take_along_axis(apart, order, axis=1) < np.inf
            gallery = crops[order]  # (Q, G')
            shows = vis[gallery] & usable[..., None]  # (Q, G', P)
            pair = distance[:, queries[:, None], gallery].transpose(1, 2, 0)  # (Q, G', P)
            slot = np.where(shows, pair, np.inf).min(axis=1)  # (Q, P)
            shared = vis[queries] & shows.any(axis=1)
            keep = usable.any(axis=1)
            out.append((
                np.where(shared, slot, 1.0)[keep],
                shared[keep],
                (ids[queries] == identity)[keep],
                np.array([group_of[i] for i in ids[queries]], np.int64)[keep],
            ))  # fmt: skip
    slot_distance, shared, same, group = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return slot_distance.astype(np.float64), shared, same, group


def fit_slots(
    slot_distance: np.ndarray, shared: np.ndarray, same: np.ndarray, source: str, statistic: str
) -> DistanceCalibration:
    """:func:`fit_calibration` of per-slot pair distances (holistic + part evidence).

    Raises:
        ConfigError: see :func:`fit_calibration`.
    """
    share, mean = part_evidence(slot_distance, shared)
    parts = slot_distance.shape[1] > 1
    return fit_calibration(
        slot_distance[same, 0],
        slot_distance[~same, 0],
        f"{source}: {int(same.sum())} same / {int((~same).sum())} different identity "
        f"pairs, {statistic}",
        same_parts=(share[same], mean[same]) if parts else None,
        different_parts=(share[~same], mean[~same]) if parts else None,
        statistic=statistic,
    )


def balanced_log_loss(
    calibration: DistanceCalibration,
    slot_distance: np.ndarray,
    shared: np.ndarray,
    same: np.ndarray,
) -> float:
    """Mean of the same-pair and the different-pair negative log-likelihoods (nats)."""
    z = calibration.logit(slot_distance, shared)
    return float(0.5 * np.logaddexp(0, -z[same]).mean() + 0.5 * np.logaddexp(0, z[~same]).mean())


def calibrate_variant(
    variant: Variant, records: list[CropRecord], source: str, batch_size: int = 64
) -> tuple[DistanceCalibration, float]:
    """Calibration of one model (and, for learned parts, its visibility threshold).

    Args:
        variant: the model and representation to calibrate (as used when tracking).
        records: crops with identities (the training subset: never the test identities);
            at most :data:`MAX_PER_IDENTITY` of each identity are used.
        source: provenance text stored in the calibration (data set and split).
        batch_size: crops per forward pass.

    Returns:
        ``(calibration, min_part_area)``: the calibration of the gallery-minimum
        statistic and the chosen share of feature-map cells a visible part must win (the
        model's own :attr:`~kpr_track.reid.model.KPRModel.min_part_area` when the parts
        are not learned).

    Raises:
        ConfigError: with fewer than two same- or different-identity pairs.
    """
    records = evenly_spaced(records, MAX_PER_IDENTITY)
    embeddings, visibility, areas, cells = embed_with_areas(variant, records, batch_size)
    statistic = f"gallery-min-{GALLERY_SIZE}"
    chosen = float(variant.model.min_part_area)
    if areas.shape[1]:
        scores = {}
        for count in AREA_CELLS:
            threshold = count / cells - 1e-6
            visibility[:, 1:] = (areas >= threshold).astype(np.float32)
            slot, shared, same, group = gallery_pairs(embeddings, visibility, records)
            fold = group % 2 == 0
            fitted = fit_slots(slot[fold], shared[fold], same[fold], source, statistic)
            scores[count] = balanced_log_loss(fitted, slot[~fold], shared[~fold], same[~fold])
        best = min(scores, key=scores.get)
        chosen = best / cells - 1e-6
        visibility[:, 1:] = (areas >= chosen).astype(np.float32)
        source = (
            f"{source}; min_part_area {best} cells (held-out log-loss "
            + ", ".join(f"{c}: {v:.4f}" for c, v in scores.items())
            + ")"
        )
    slot, shared, same, _ = gallery_pairs(embeddings, visibility, records)
    return fit_slots(slot, shared, same, source, statistic), chosen
