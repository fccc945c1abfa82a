"""onnxruntime CPU sessions that share the machine with PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError, one_line


def cpu_session(path: str | Path, threads: int | None = None) -> Any:
    """An onnxruntime ``InferenceSession`` of ``path`` on the CPU whose threads sleep
    between runs.

    onnxruntime's intra-op threads spin after every run by default, waiting for the next
    one; in kpr-track a PyTorch model (top-down pose, KPR, the detector) runs next and the
    spinning threads take its cores. Measured on PETS09 (2 cores, `--det yolox`): YOLOX +
    top-down pose 98-116 ms a frame with spinning, 55-62 ms without.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads; default torch's thread count, so one setting
            (``torch.set_num_threads``, ``--threads``) governs every runtime.

    Raises:
        WeightsError: naming the file when onnxruntime cannot load it.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own error types: Fail, InvalidProtobuf ...
        raise WeightsError(f"{path}: not loadable by onnxruntime ({one_line(error)})") from None
