"""The ReID evaluation protocols (:func:`kpr_track.train.evaluate.valid_pairs`), in a module
without torch so ``kpr-track --help`` lists them without loading the model code.

- ``frame-gap``: same-identity gallery samples of the query's camera closer than the
  minimum frame gap are ignored (splits cut from one video);
- ``occluded-posetrack``: the reference Occluded-PoseTrack-ReID evaluation, nothing excluded.
"""

PROTOCOLS = ("frame-gap", "occluded-posetrack")
