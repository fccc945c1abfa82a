"""Convert Open Model Zoo's ``person-reidentification-retail-028x`` ONNX graphs to :class:`OSNet`.

The ONNX files (converted from the official OpenVINO IR) keep the original names of
the lite convs and of the first blocks' gates (``conv2.0.conv2a.conv1.weight``, ...);
every other weight is an anonymous folded constant. This converter finds each of
those by walking the graph from the named anchors (a block's bottleneck conv feeds
its four streams, each stream's output feeds the gate and the fusion sum, the sum
feeds ``conv3``, and so on), so it depends on the graph's structure, not on constant
names. Run it once per model::

    python -m kpr_track.reid.omz_convert \
        ../shared/weights/person-reidentification-retail-0287.onnx retail-0287 \
        kpr_track/assets/osnet_retail_0287.safetensors

The result is checked against onnxruntime by ``tests/test_osnet.py``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from ..errors import WeightsError
from .osnet import OSNET_SPECS, OSNet, OSNetSpec

_STAGE_NAMES = ("conv2", "conv3", "conv4")
_STREAM_NAMES = ("conv2a", "conv2b", "conv2c", "conv2d")


class _Graph:
    """Producer / consumer index of an ONNX graph with its initializers as arrays."""

    def __init__(self, path: Path) -> None:
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            raise WeightsError("converting ONNX weights needs `pip install onnx`") from None
        try:
            model = onnx.load(str(path))
        except Exception as error:  # any parse failure means an unusable file
            raise WeightsError(f"{path}: not an ONNX model ({error})") from None
        self.path = path
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {out: node for node in model.graph.node for out in node.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in model.graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.by_weight = {
            name: node for node in model.graph.node for name in node.input if name in self.inits
        }
        self.attributes = {
            node.name: {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            for node in model.graph.node
        }

    def fail(self, what: str) -> WeightsError:
        return WeightsError(f"{self.path}: not an OMZ OSNet graph ({what} not found)")

    def constant(self, node, index: int = 1) -> np.ndarray:
        return self.inits[node.input[index]]

    def next(self, node, op: str):
        """The single consumer of ``node``'s output with type ``op``."""
        found = [n for n in self.consumers[node.output[0]] if n.op_type == op]
        if len(found) != 1:
            raise self.fail(f"{op} after {node.name}")
        return found[0]

    def named(self, weight: str):
        node = self.by_weight.get(f"{weight}_output0") or self.by_weight.get(weight)
        if node is None:
            raise self.fail(weight)
        return node

    def conv(self, node) -> dict[str, np.ndarray]:
        """Weight and folded bias (the Add that follows, zeros if none) of a Conv node."""
        weight = self.inits[node.input[1]]
        adds = [n for n in self.consumers[node.output[0]] if n.op_type == "Add"]
        bias_inputs = [n.input[1] for n in adds if n.input[1] in self.inits]
        bias = self.inits[bias_inputs[0]].ravel() if bias_inputs else np.zeros(len(weight))
        return {"weight": weight, "bias": bias}

    def after_bias(self, node):
        """The tensor-producing node after a Conv's folded bias Add (or the Conv itself)."""
        adds = [n for n in self.consumers[node.output[0]] if n.op_type == "Add"]
        return adds[0] if adds and adds[0].input[1] in self.inits else node


def _put(state: dict, prefix: str, params: dict[str, np.ndarray], bias: bool = True) -> None:
    state[f"{prefix}.weight"] = params["weight"]
    if bias:
        state[f"{prefix}.bias"] = params["bias"]


def _affine_after(graph: _Graph, norm_node) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, shift) of the Mul / Add that follow a normalisation node."""
    node = norm_node
    while node.op_type != "Mul":
        node = graph.consumers[node.output[0]][0]
    shift = graph.next(node, "Add")
    return graph.constant(node).ravel(), graph.constant(shift).ravel()


def _block(graph: _Graph, spec: OSNetSpec, state: dict, stage: int, block: int) -> object:
    """Fill ``stages.{stage}.{block}``; returns the block's output ReLU node."""
    onnx_name = f"{_STAGE_NAMES[stage]}.{block}"
    prefix = f"stages.{stage}.{block}"
    first = graph.named(f"{onnx_name}.conv2a.conv1.weight")
    relu = graph.producer[first.input[0]]
    conv1 = graph.producer[graph.producer[relu.input[0]].input[0]]
    _put(state, f"{prefix}.conv1", graph.conv(conv1))
    block_input = conv1.input[0]
    gated = None
    for s, stream in enumerate(_STREAM_NAMES):
        for layer in range(s + 1):
            suffix = "" if s == 0 else f".{layer}"
            pointwise = graph.named(f"{onnx_name}.{stream}{suffix}.conv1.weight")
            depthwise = graph.next(pointwise, "Conv")
            base = f"{prefix}.streams.{s}.{layer}"
            _put(state, f"{base}.conv1", graph.conv(pointwise), bias=False)
            _put(state, f"{base}.conv2", graph.conv(depthwise))
        out = graph.next(graph.after_bias(depthwise), "Relu")
        gated = graph.next(out, "Mul")
    if block == 0:
        fc1 = graph.named(f"{onnx_name}.gate.fc1.weight")
        fc2 = graph.named(f"{onnx_name}.gate.fc2.weight")
        _put(state, f"{prefix}.gate.fc1", graph.conv(fc1))
        _put(state, f"{prefix}.gate.fc2", graph.conv(fc2))
    else:
        mean = graph.next(out, "ReduceMean")
        reshape = graph.next(mean, "Reshape")
        groups = int(graph.constant(reshape)[1])
        if groups != spec.gate_groups[stage]:
            raise graph.fail(f"{onnx_name} gate with {spec.gate_groups[stage]} groups")
        norm = graph.next(reshape, "LayerNormalization")
        scale, shift = _affine_after(graph, norm)
        state[f"{prefix}.gate.weight"], state[f"{prefix}.gate.bias"] = scale, shift
    fused = gated
    while fused.op_type != "Conv":  # the chain of Adds summing the gated streams
        fused = graph.consumers[fused.output[0]][0]
    _put(state, f"{prefix}.conv3", graph.conv(fused))
    residual = graph.next(graph.after_bias(fused), "Add")
    identity = next(name for name in residual.input if name != graph.after_bias(fused).output[0])
    if identity != block_input:
        downsample = graph.producer[graph.producer[identity].input[0]]  # Conv <- bias Add
        _put(state, f"{prefix}.downsample", graph.conv(downsample))
    return graph.next(residual, "Relu")


def convert_omz_osnet(onnx_path: str | Path, variant: str) -> OSNet:
    """Build an :class:`OSNet` with the weights of an OMZ ReID ONNX graph.

    Args:
        onnx_path: ``person-reidentification-retail-0287.onnx`` or ``-0288-nchw.onnx``
            (NCHW, dynamic batch; not the faulty NHWC ``-0288.onnx``).
        variant: key of :data:`~kpr_track.reid.osnet.OSNET_SPECS`.

    Returns:
        The network in eval mode, float32.

    Raises:
        WeightsError: the file is not an ONNX graph of this family, or its tensors do
            not fit the variant.
    """
    graph = _Graph(Path(onnx_path))
    spec = OSNET_SPECS[variant]
    state: dict[str, np.ndarray] = {}
    stem_conv = graph.named("conv1.conv.weight")
    _put(state, "conv1", graph.conv(stem_conv), bias=False)
    input_norm = graph.producer[
        graph.producer[graph.producer[stem_conv.input[0]].input[0]].input[0]
    ]
    state["input_norm.weight"], state["input_norm.bias"] = _affine_after(graph, input_norm)
    stem_norm = graph.next(stem_conv, "LayerNormalization")
    state["conv1_norm.weight"], state["conv1_norm.bias"] = _affine_after(graph, stem_norm)
    for stage in range(3):
        for block in range(2):
            out = _block(graph, spec, state, stage, block)
        after = graph.next(out, "Conv")
        name = f"transitions.{stage}" if stage < 2 else "conv5"
        _put(state, name, graph.conv(after))
    gdc = graph.next(graph.next(graph.after_bias(after), "Relu"), "Conv")
    _put(state, "head_pool", graph.conv(gdc))
    matmul = graph.next(graph.next(graph.after_bias(gdc), "Reshape"), "MatMul")
    state["head_fc.weight"] = graph.constant(matmul).T
    state["head_fc.bias"] = graph.constant(graph.next(matmul, "Add")).ravel()
    scale = graph.next(graph.next(graph.next(matmul, "Add"), "Reshape"), "Mul")
    state["head_scale"] = graph.constant(scale).ravel()
    shift = graph.next(scale, "Add")
    state["head_shift"] = graph.constant(shift).ravel()
    slope = graph.attributes[graph.next(shift, "LeakyRelu").name]["alpha"]
    if not np.isclose(slope, spec.leaky_slope, atol=1e-6):
        raise graph.fail(f"head leaky ReLU slope {spec.leaky_slope} (graph: {slope})")
    model = OSNet(spec)
    try:
        model.load_state_dict(
            {k: torch.from_numpy(np.array(v, np.float32)) for k, v in state.items()}
        )
    except RuntimeError as error:
        raise WeightsError(f"{onnx_path}: tensors do not fit {variant} ({error})") from None
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    """Convert once and save as safetensors (float32)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", type=Path)
    parser.add_argument("variant", choices=sorted(OSNET_SPECS))
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    from safetensors.torch import save_file

    model = convert_omz_osnet(args.onnx, args.variant)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
