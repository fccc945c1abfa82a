"""Ranking visualisation: one PNG per query with its top-N gallery samples.

Top row: the query and its N nearest gallery crops (green border: same identity, red:
different), each titled with the distance and the number of visible parts. Bottom
row: the same crops overlaid with the model's foreground attention (1 - background
map) and, for gallery samples, the per-part distances (``-`` where the part is not
visible in both).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..keypoints import part_names
from ..reid.distance import part_distance
from .augment import read_crop
from .crop_cache import CropRecord
from .evaluate import Variant, embed_records, prepare_inputs


def write_visrank(
    variant: Variant,
    query: list[CropRecord],
    gallery: list[CropRecord],
    valid: np.ndarray,
    top: int,
    folder: Path,
) -> list[Path]:
    """Write ``folder/<query ann_id>.png`` for every query.

    Args:
        variant: the model variant (parts representation).
        query: query crops.
        gallery: gallery crops.
        valid: `(Q, G)` bool pairs to rank (:func:`~kpr_track.train.evaluate.valid_pairs`).
        top: N gallery samples per query.
        folder: output folder.

    Returns:
        The written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    q_emb, q_vis = embed_records(variant, query)
    g_emb, g_vis = embed_records(variant, gallery)
    distance, _ = part_distance(q_emb, q_vis, g_emb, g_vis)
    names = part_names(variant.model.num_parts)
    written = []
    for row, record in enumerate(query):
        keep = np.flatnonzero(valid[row])
        ranked = keep[np.argsort(distance[row, keep], kind="stable")[:top]]
        shown = [record, *(gallery[i] for i in ranked)]
        maps = _foreground_maps(variant, shown)
        figure, axes = plt.subplots(2, len(shown), figsize=(1.6 * len(shown), 6.4), squeeze=False)
        for column, sample in enumerate(shown):
            image = read_crop(sample)
            if column == 0:
                colour, title = "blue", f"query\nparts {int(q_vis[row, 1:].sum())}"
            else:
                g = ranked[column - 1]
                colour = "green" if sample.identity == record.identity else "red"
                title = f"#{column} d={distance[row, g]:.2f}\nparts {int(g_vis[g, 1:].sum())}"
            top_axis, bottom_axis = axes[0, column], axes[1, column]
            top_axis.imshow(image)
            top_axis.set_title(title, fontsize=7)
            for spine in top_axis.spines.values():
                spine.set(color=colour, linewidth=4)
            bottom_axis.imshow(image)
            bottom_axis.imshow(maps[column], alpha=0.5, cmap="jet", extent=_extent(image))
            if column:
                bottom_axis.set_title(
                    _part_text(q_emb[row], q_vis[row], g_emb[g], g_vis[g], names), fontsize=5
                )
            for axis in (top_axis, bottom_axis):
                axis.set_xticks([])
                axis.set_yticks([])
        figure.tight_layout()
        path = folder / f"{record.ann_id}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path)
    return written


@torch.inference_mode()
def _foreground_maps(variant: Variant, records: list[CropRecord]) -> np.ndarray:
    """`(B, h, w)` foreground attention (1 - background map) of the crops."""
    images, prompts = prepare_inputs(records, variant.model, variant.prompts)
    return (1.0 - variant.model.eval()(images, prompts).part_maps[:, 0]).numpy()


def _extent(image: np.ndarray) -> tuple[float, float, float, float]:
    return (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)


def _part_text(qe, qv, ge, gv, names) -> str:
    """Per-part distances in [0, 1] of one pair, one per line."""
    lines = []
    for k, name in enumerate(names, start=1):
        if qv[k] * gv[k] > 0:
            lines.append(f"{name} {np.linalg.norm(qe[k] - ge[k]) / 2:.2f}")
        else:
            lines.append(f"{name} -")
    return "\n".join(lines)
