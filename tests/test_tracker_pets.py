"""Real data: the motion-only tracker on PETS09-S2L1 ground-truth boxes keeps identities."""

from __future__ import annotations

import numpy as np

from kpr_track.detections import Detections
from kpr_track.trackers import load_tracker

FRAMES = 100


def test_motion_tracker_keeps_gt_identities_on_pets09(pets_gt):
    rows = np.loadtxt(pets_gt, delimiter=",")
    rows = rows[(rows[:, 0] <= FRAMES) & (rows[:, 6] != 0)]
    tracker = load_tracker("motion", frame_rate=7.0)
    gt_to_tracks: dict[int, list[int]] = {}  # gt id -> output ids over its frames
    output = 0
    for frame_id in range(1, FRAMES + 1):
        gt = rows[rows[:, 0] == frame_id]
        boxes = np.c_[gt[:, 2:4], gt[:, 2:4] + gt[:, 4:6]]
        ids = tracker.update(Detections(boxes, np.ones(len(gt)), np.zeros((len(gt), 17, 3))))
        # Detections are the gt boxes, so ids align with gt rows: no overlap matching needed.
        for gt_id, track_id in zip(gt[:, 1].astype(int), ids, strict=True):
            if track_id >= 0:
                gt_to_tracks.setdefault(gt_id, []).append(int(track_id))
                output += 1
    switches = sum(int(np.count_nonzero(np.diff(t))) for t in gt_to_tracks.values())
    owners = {}  # output id -> gt ids it was given to
    for gt_id, track_ids in gt_to_tracks.items():
        for track_id in set(track_ids):
            owners.setdefault(track_id, set()).add(gt_id)
    merged = sum(len(g) - 1 for g in owners.values())
    print(
        f"PETS09 gt boxes, {FRAMES} frames: {len(rows)} boxes, {output} output, "
        f"{switches} id switches, {merged} merged ids, {len(owners)} tracks"
    )
    assert switches == 0 and merged == 0
    assert len(owners) == len(gt_to_tracks) == 6  # one output track per person
    # Only the first min_hits - 1 frames of the 3 people entering after frame 1 are held back.
    assert output == len(rows) - 3 * (tracker.config.min_hits - 1)
