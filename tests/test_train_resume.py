"""``kpr-track train`` killed mid-epoch (SIGKILL) resumes from its last checkpoint and
ends with the same weights and metrics as an uninterrupted run of the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from kpr_track.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

ITERATIONS = 6  # per epoch
CHECKPOINT_EVERY = 2


def _train(config: Path, output: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "kpr_track", "train", str(config), "--output-dir", str(output)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> str:
    """Wait for a training run to succeed; its log (stderr)."""
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return stderr


def _epoch_rows(output: Path) -> list[dict]:
    return [
        {k: v for k, v in row.items() if k != "seconds"}
        for row in json.loads((output / "metrics.json").read_text())
    ]


def test_training_killed_mid_epoch_resumes_to_the_same_result(mot17_reid_split, tmp_path):
    root, _ = mot17_reid_split
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"root": str(root), "input_height": 128, "input_width": 64},
                "model": {"embed_dim": 256},
                "optim": {"lr": 1e-3, "warmup_iterations": 2},
                "train": {
                    "output_dir": "unused",
                    "epochs": 2,
                    "iterations_per_epoch": ITERATIONS,
                    "identities_per_batch": 2,
                    "instances_per_identity": 4,
                    "eval_every": 0,
                    "threads": 1,
                    "seed": 3,
                    "checkpoint_every": CHECKPOINT_EVERY,
                },
            }
        )
    )
    killed = tmp_path / "killed"
    process = _train(config, killed)
    deadline = time.monotonic() + 600
    while True:  # kill as soon as a mid-epoch checkpoint exists
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        folder = latest_checkpoint(killed)
        if folder is not None and yaml.safe_load((folder / "state.yaml").read_text())["step"]:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "kpr_head.safetensors").exists()
    _, _, state = load_checkpoint(latest_checkpoint(killed), torch.device("cpu"))
    assert state["epoch"] < 2 and 0 < state["step"] < ITERATIONS

    log = _finish(_train(config, killed))
    assert f"at epoch {state['epoch']}, iteration {state['step']}" in log
    straight = tmp_path / "straight"
    _finish(_train(config, straight))
    assert _epoch_rows(killed) == _epoch_rows(straight)
    # Equal tensors (the file bytes are not: safetensors orders its metadata at random).
    heads = [load_file(str(output / "kpr_head.safetensors")) for output in (killed, straight)]
    assert heads[0].keys() == heads[1].keys()
    for name, tensor in heads[0].items():
        assert torch.equal(tensor, heads[1][name]), name

    # A checkpoint of the earlier prompt stem (3x3 on crop-size prompts) is refused by name.
    folder = latest_checkpoint(killed)
    assert folder is not None
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["model.prompt_stem.weight"] = torch.zeros(32, 10, 3, 3)
    save_file(tensors, str(folder / "model.safetensors"))
    process = _train(config, killed)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode != 0
    assert "a checkpoint of another model than the config's" in stderr
    assert "prompt_stem.weight" in stderr and "Traceback" not in stderr


def test_a_kill_between_the_checkpoint_renames_keeps_the_previous_checkpoint(tmp_path):
    first = {"w": torch.arange(4.0)}
    save_checkpoint(tmp_path, first, {"o": torch.ones(1)}, {"epoch": 1, "step": 0})
    save_checkpoint(tmp_path, {"w": torch.zeros(4)}, {"o": torch.ones(1)}, {"epoch": 1, "step": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    # A kill after "checkpoint -> checkpoint.old" and before "checkpoint.new -> checkpoint":
    os.replace(tmp_path / "checkpoint", tmp_path / "checkpoint.old")
    (tmp_path / "checkpoint.new").mkdir()  # incomplete
    folder = latest_checkpoint(tmp_path)
    assert folder == tmp_path / "checkpoint.old"
    tensors, _, state = load_checkpoint(folder, torch.device("cpu"))
    assert state == {"epoch": 1, "step": 2} and torch.equal(tensors["w"], torch.zeros(4))
    save_checkpoint(tmp_path, first, {"o": torch.ones(1)}, {"epoch": 2, "step": 0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
