"""The appearance stage: crops + prompts + KPR model, batched over a frame's detections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import torch
from torch import nn

from ..detections import Detections
from ..errors import ConfigError, InputError
from ..prompts import empty_prompts, render_prompts
from .calibration import DistanceCalibration
from .crops import crop_people, crop_windows
from .model import KPRModel, KPROutput

if TYPE_CHECKING:
    from .export import OnnxAppearanceModel

Representation = Literal["parts", "global"]

# Crops per forward pass. Measured on a 2-core Xeon, one torch thread (benchmarks/speed.py):
# batch 8 is the fastest per crop; at 16 and more PyTorch's 1x1 convolutions switch to
# oneDNN with layout reorders and the stem activations (1 MiB per crop) overflow the 2 MiB
# L2 cache, so one forward of 32 crops ran at about half the speed per crop of 8.
DEFAULT_BATCH = 8


class AppearanceModel(Protocol):
    """What the stage runs on a batch: a :class:`RepresentationNet` (torch) or an
    :class:`~kpr_track.reid.export.OnnxAppearanceModel` (onnxruntime)."""

    num_parts: int
    representation: Representation

    def prompt_size(self, input_size: tuple[int, int]) -> tuple[int, int]: ...

    def __call__(
        self, images: torch.Tensor, prompts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def output_shape(self) -> tuple[int, int]: ...


class RepresentationNet(nn.Module):
    """A :class:`KPRModel` giving what the tracker reads: embeddings and visibility.

    This is the network :func:`kpr_track.reid.export.export_onnx` writes.

    Args:
        model: the KPR model.
        representation: ``"parts"``: `(B, 1 + K, D)` holistic + part embeddings and their
            visibility; ``"global"``: the trunk head's holistic embedding `(B, 1, G)` with
            visibility 1.
    """

    def __init__(self, model: KPRModel, representation: Representation) -> None:
        super().__init__()
        if representation not in ("parts", "global"):
            raise ConfigError(f"representation={representation!r}; expected 'parts' or 'global'")
        self.model = model
        self.representation = representation
        self.num_parts = model.num_parts
        self.prompt_size = model.prompt_size

    def forward(
        self, images: torch.Tensor, prompts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(B, 3, H, W)` crops + `(B, K + 2, H / 2, W / 2)` prompts -> ``(embeddings (B, P,
        D), visibility (B, P))`` float32 (``P`` = 1 + K or 1)."""
        return representation_of(self.model(images, prompts), self.representation)

    def output_shape(self) -> tuple[int, int]:
        """``(P, D)``: slots and embedding size of :meth:`forward`'s embeddings."""
        if self.representation == "global":
            return 1, self.model.trunk.head_dim
        return self.model.num_parts + 1, self.model.embed_dim


def representation_of(
    out: KPROutput, representation: Representation
) -> tuple[torch.Tensor, torch.Tensor]:
    """The embeddings `(B, P, D)` and visibility `(B, P)` of ``representation`` in ``out``."""
    if representation == "global":
        embeddings = out.global_embedding[:, None]
        return embeddings, torch.ones_like(embeddings[..., 0])
    return out.embeddings, out.visibility


class KPRAppearance:
    """Fills :class:`~kpr_track.detections.Detections` with KPR part embeddings.

    The detections of a frame are embedded in chunks of ``batch_size``: each chunk is
    cropped (one batched RoIAlign of each box clipped to the frame,
    :func:`~kpr_track.reid.crops.crop_windows`) and prompted in the same window (one
    prompt render, with every detection of the frame as a source of negatives), then run
    through the model.

    Args:
        model: a :class:`KPRModel` (put in eval mode and channels-last here), or an ONNX model
            (:class:`~kpr_track.reid.export.OnnxAppearanceModel`, which carries its own
            representation and runs on the CPU).
        input_size: crop ``(H, W)`` in pixels.
        prompts: feed keypoint prompts; ``False`` feeds the "no prompt" tensor.
        negatives: include other people's keypoints as negative prompts.
        representation: ``"parts"`` gives `(N, 1 + K, D)` holistic + part embeddings;
            ``"global"`` gives the trunk head's holistic embedding as `(N, 1, G)` with
            visibility 1 (the non-part-based baseline on the same trunk).
        device: torch device for the model and crops.
        batch_size: crops per forward pass (default :data:`DEFAULT_BATCH`, the fastest
            per crop measured on a laptop-class CPU).
        calibration: the model's distance calibration (same-identity probability of a
            part distance); trackers read it from :attr:`calibration`.

    Raises:
        ConfigError: an ONNX model with another representation or input size than asked.
    """

    def __init__(
        self,
        model: KPRModel | OnnxAppearanceModel,
        *,
        input_size: tuple[int, int] = (256, 128),
        prompts: bool = True,
        negatives: bool = True,
        representation: Representation = "parts",
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH,
        calibration: DistanceCalibration | None = None,
    ) -> None:
        self.device = torch.device(device)
        if isinstance(model, KPRModel):
            # Channels-last weights make every activation channels-last: 9 % faster per
            # crop with one thread, 33 % with two (2-core Xeon, batch 8).
            self.model = model.eval().to(self.device, memory_format=torch.channels_last)
            self.net: AppearanceModel = RepresentationNet(self.model, representation)
        else:
            self.model = self.net = model
            if model.representation != representation or model.input_size != input_size:
                raise ConfigError(
                    f"the ONNX model gives the {model.representation!r} representation of "
                    f"{model.input_size} crops, not {representation!r} of {input_size}"
                )
        self.input_size = input_size
        self.prompt_size = self.net.prompt_size(input_size)
        self.use_prompts = prompts
        self.negatives = negatives
        self.representation = representation
        self.batch_size = batch_size
        self.calibration = calibration

    def inputs(
        self, frame: np.ndarray, detections: Detections, targets: np.ndarray | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The model inputs of one frame's detections, each made in one batched operation.

        Args:
            frame: `(H, W, 3)` BGR uint8.
            detections: the frame's detections (boxes and keypoints in frame pixels); all
                of them give negative prompts.
            targets: `(B,)` int indices of the detections to make inputs for; None: all.

        Returns:
            ``(crops (B, 3, H, W), prompts (B, K + 2, H', W'))`` float32 on :attr:`device`
            (``B = N`` without ``targets``; ``(H', W')`` = :attr:`prompt_size`, the
            model's, rendered in the same window as the crop).
        """
        chosen = np.arange(len(detections)) if targets is None else np.asarray(targets, np.int64)
        num_parts = self.net.num_parts
        windows = crop_windows(detections.boxes[chosen], frame.shape)
        if self.use_prompts:
            prompts = render_prompts(
                detections.boxes,
                detections.keypoints,
                self.prompt_size,
                num_parts,
                negatives=self.negatives,
                scores=detections.scores,
                targets=chosen,
                windows=windows,
            )
        else:
            prompts = empty_prompts(len(chosen), self.prompt_size, num_parts)
        crops = crop_people(frame, windows, self.input_size, self.device)
        return crops, prompts.to(self.device)

    @torch.inference_mode()
    def embed(self, frame: np.ndarray, detections: Detections) -> KPROutput:
        """Run the model on every detection of one frame.

        Args:
            frame: `(H, W, 3)` BGR uint8.
            detections: the frame's detections (boxes and keypoints in frame pixels).

        Returns:
            :class:`KPROutput` with ``B = N`` on the CPU.

        Raises:
            ConfigError: with an ONNX model, which gives embeddings and visibility only.
        """
        if not isinstance(self.model, KPRModel):
            raise ConfigError(
                "embed() returns every KPR output (part maps too) and needs the torch "
                "model; the ONNX backend gives embeddings and visibility (call the stage)"
            )
        outputs = self._batches(self.model, frame, detections, np.arange(len(detections)))
        if not outputs:
            return self._empty_output()
        return KPROutput(*(torch.cat(parts).cpu() for parts in zip(*outputs, strict=True)))

    @torch.inference_mode()
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

        Raises:
            InputError: ``targets`` is not `(N,)`.
        """
        chosen = np.ones(len(detections), bool) if targets is None else np.asarray(targets, bool)
        if chosen.shape != (len(detections),):
            raise InputError(f"targets: expected shape ({len(detections)},), got {chosen.shape}")
        slots, dim = self.net.output_shape()
        embeddings = np.zeros((len(detections), slots, dim), np.float32)
        visibility = np.zeros((len(detections), slots), np.float32)
        outputs = self._batches(self.net, frame, detections, np.flatnonzero(chosen))
        if outputs:
            parts = (torch.cat(p).cpu().numpy() for p in zip(*outputs, strict=True))
            embeddings[chosen], visibility[chosen] = parts
        return detections.with_appearance(embeddings, visibility)

    def _batches(
        self, model, frame: np.ndarray, detections: Detections, targets: np.ndarray
    ) -> list:
        """``model``'s outputs for the detections ``targets``, whose inputs are made and run
        ``batch_size`` at a time (a crowd's inputs never sit in memory all at once)."""
        step = self.batch_size
        starts = range(0, len(targets), step)
        return [model(*self.inputs(frame, detections, targets[i : i + step])) for i in starts]

    def _empty_output(self) -> KPROutput:
        slots, dim = self.model.num_parts + 1, self.model.embed_dim
        return KPROutput(
            embeddings=torch.zeros((0, slots, dim)),
            visibility=torch.zeros((0, slots)),
            part_maps=torch.zeros((0, slots, 1, 1)),
            global_embedding=torch.zeros((0, self.model.trunk.head_dim)),
        )
