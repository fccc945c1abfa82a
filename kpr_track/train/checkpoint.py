"""Training checkpoints that a kill at any moment cannot corrupt.

A checkpoint is one folder::

    model.safetensors   model + identity heads (float32)
    optimizer.pt        optimizer + scheduler state (torch.save of tensors, loaded with
                        weights_only=True)
    state.yaml          epoch, step within the epoch, partial loss sums, NumPy and torch
                        RNG states, per-epoch history

It is written whole into ``checkpoint.new/``, then swapped in by two renames
(``checkpoint/`` -> ``checkpoint.old/``, ``checkpoint.new/`` -> ``checkpoint/``). A process
killed at any point leaves either ``checkpoint/`` or, between the two renames, only
``checkpoint.old/``: :func:`latest_checkpoint` finds whichever is complete.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from ..errors import InputError

CHECKPOINT = "checkpoint"
_FILES = ("model.safetensors", "optimizer.pt", "state.yaml")


def save_checkpoint(
    output: Path, tensors: dict[str, torch.Tensor], optimizer: dict[str, Any], state: dict
) -> Path:
    """Write a checkpoint of a training run to ``output/checkpoint`` atomically.

    Args:
        output: the run's output folder.
        tensors: model weights, name -> tensor.
        optimizer: optimizer / scheduler state dicts (tensors and plain values).
        state: plain YAML-serialisable values (epoch, step, RNG states, history).

    Returns:
        The checkpoint folder.
    """
    final, new, old = (output / f"{CHECKPOINT}{suffix}" for suffix in ("", ".new", ".old"))
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(new / _FILES[0]))
    torch.save(optimizer, new / _FILES[1])
    (new / _FILES[2]).write_text(yaml.safe_dump(state, sort_keys=False))
    if final.is_dir():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(output: Path) -> Path | None:
    """The complete checkpoint folder of ``output`` (``checkpoint/``, else
    ``checkpoint.old/`` left by a kill between the two renames), or None."""
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
        folder = output / name
        if all((folder / file).is_file() for file in _FILES):
            return folder
    return None


def load_checkpoint(
    folder: Path, device: torch.device
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict]:
    """``(tensors, optimizer, state)`` as given to :func:`save_checkpoint`.

    Raises:
        InputError: a file of the checkpoint cannot be read (names the file).
    """
    try:
        tensors = load_file(str(folder / _FILES[0]), device=str(device))
    except Exception as error:  # safetensors raises its own error types
        raise InputError(f"{folder / _FILES[0]}: unreadable checkpoint ({error})") from None
    try:
        optimizer = torch.load(folder / _FILES[1], map_location=device, weights_only=True)
    except Exception as error:  # torch raises several error types on a bad file
        raise InputError(f"{folder / _FILES[1]}: unreadable checkpoint ({error})") from None
    state = yaml.safe_load((folder / _FILES[2]).read_text())
    if not isinstance(state, dict):
        raise InputError(f"{folder / _FILES[2]}: expected a mapping")
    return tensors, optimizer, state
