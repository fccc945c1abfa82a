"""The appearance stage: crops + prompts + KPR model, batched over a frame's detections."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..detections import Detections
from ..errors import InputError
from ..prompts import empty_prompts, render_prompts
from .calibration import DistanceCalibration
from .crops import crop_people, frame_to_tensor
from .model import KPRModel, KPROutput

Representation = Literal["parts", "global"]


class KPRAppearance:
    """Fills :class:`~kpr_track.detections.Detections` with KPR part embeddings.

    Every detection of a frame is cropped, prompted and embedded in batches of
    ``batch_size`` crops (one RoIAlign call and one prompt render per frame).

    Args:
        model: a :class:`KPRModel` (put in eval mode here).
        input_size: crop ``(H, W)`` in pixels.
        prompts: feed keypoint prompts; ``False`` feeds the "no prompt" tensor.
        negatives: include other people's keypoints as negative prompts.
        representation: ``"parts"`` gives `(N, 1 + K, D)` holistic + part embeddings;
            ``"global"`` gives the trunk head's holistic embedding as `(N, 1, G)` with
            visibility 1 (the non-part-based baseline on the same trunk).
        device: torch device for the model and crops.
        batch_size: crops per forward pass.
        calibration: the model's distance calibration (same-identity probability of a
            part distance); trackers read it from :attr:`calibration`.
    """

    def __init__(
        self,
        model: KPRModel,
        *,
        input_size: tuple[int, int] = (256, 128),
        prompts: bool = True,
        negatives: bool = True,
        representation: Representation = "parts",
        device: str = "cpu",
        batch_size: int = 32,
        calibration: DistanceCalibration | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.input_size = input_size
        self.use_prompts = prompts
        self.negatives = negatives
        self.representation = representation
        self.batch_size = batch_size
        self.calibration = calibration

    @torch.inference_mode()
    def embed(
        self, frame: np.ndarray, detections: Detections, targets: np.ndarray | None = None
    ) -> KPROutput:
        """Run the model on the detections of one frame.

        Args:
            frame: `(H, W, 3)` BGR uint8.
            detections: the frame's detections (boxes and keypoints in frame pixels); all
                of them give negative prompts.
            targets: `(B,)` int indices of the detections to embed; None: all of them.

        Returns:
            :class:`KPROutput` with ``B`` (``N`` without ``targets``) on the CPU.
        """
        num_parts = self.model.num_parts
        if self.use_prompts:
            prompts = render_prompts(
                detections.boxes,
                detections.keypoints,
                self.input_size,
                num_parts,
                negatives=self.negatives,
                scores=detections.scores,
            )
        else:
            prompts = empty_prompts(len(detections), self.input_size, num_parts)
        targets = np.arange(len(detections)) if targets is None else np.asarray(targets, int)
        prompts = prompts[torch.from_numpy(targets)]
        boxes = detections.boxes[targets]
        crops = crop_people(frame_to_tensor(frame, self.device), boxes, self.input_size)
        outputs = [
            self.model(
                crops[i : i + self.batch_size], prompts[i : i + self.batch_size].to(self.device)
            )
            for i in range(0, len(boxes), self.batch_size)
        ]
        if not outputs:
            return self._empty_output(crops)
        return KPROutput(*(torch.cat(parts).cpu() for parts in zip(*outputs, strict=True)))

    def __call__(
        self, frame: np.ndarray, detections: Detections, targets: np.ndarray | None = None
    ) -> Detections:
        """Return ``detections`` carrying embeddings `(N, P, D)` and visibility `(N, P)`.

        Args:
            frame: `(H, W, 3)` BGR uint8.
            detections: the frame's detections.
            targets: `(N,)` bool, the detections to embed (e.g. those a tracker will
                compare); the others get zero embeddings and visibility 0 but still give
                negative prompts. None embeds every detection.
        """
        chosen = np.ones(len(detections), bool) if targets is None else np.asarray(targets, bool)
        if chosen.shape != (len(detections),):
            raise InputError(f"targets: expected shape ({len(detections)},), got {chosen.shape}")
        out = self.embed(frame, detections, np.flatnonzero(chosen))
        if self.representation == "global":
            embeddings = out.global_embedding[:, None]
            visibility = torch.ones(embeddings.shape[:2])
        else:
            embeddings, visibility = out.embeddings, out.visibility
        all_embeddings = np.zeros((len(detections), *embeddings.shape[1:]), np.float32)
        all_visibility = np.zeros((len(detections), visibility.shape[1]), np.float32)
        all_embeddings[chosen], all_visibility[chosen] = embeddings.numpy(), visibility.numpy()
        return detections.with_appearance(all_embeddings, all_visibility)

    def _empty_output(self, crops: torch.Tensor) -> KPROutput:
        slots, dim = self.model.num_parts + 1, self.model.embed_dim
        return KPROutput(
            embeddings=torch.zeros((0, slots, dim)),
            visibility=torch.zeros((0, slots)),
            part_maps=torch.zeros((0, slots, 1, 1)),
            global_embedding=torch.zeros((0, self.model.trunk.head_dim)),
        )
