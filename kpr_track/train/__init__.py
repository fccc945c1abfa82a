"""Training and evaluating the KPR ReID head (issue 4; DESIGN.md §3 and §5).

- :mod:`.dataset`: the Occluded-PoseTrack-ReID loader (PoseTrack21 json + split files);
- :mod:`.split_builder`: the same split built from a MOTChallenge sequence;
- :mod:`.crop_cache`: crops cached as JPEGs with keypoints in crop pixels;
- :mod:`.parsing`, :mod:`.augment`, :mod:`.sampler`, :mod:`.losses`: the training recipe;
- :mod:`.trainer`: the loop (``kpr-track train``); :mod:`.evaluate` and :mod:`.visrank`:
  mAP / CMC and ranking images (``kpr-track eval-reid``).

Nothing is imported here, so ``import kpr_track.train`` stays light.
"""
