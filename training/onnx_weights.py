"""Read a reader's weights back out of its ONNX export, so a new stage can start from a shipped model.

The checkpoints `make train-reader` writes stay on the machine that trained; what is committed is
models/reader/model.onnx, quantised to int8. The exporter keeps most weights under their PyTorch
names, but each linear layer's weight becomes a transposed MatMul constant with a generated name;
it is named again here by the bias that the graph adds straight after that MatMul. An int8 file's
weights are read back as int8 times their scale: rounded, within half a step of the fp32 ones; a
table in 4 bits (the second reader's lookups, `training.quantise --table-bits 4`) as its 4-bit
values times their block's scale.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from training.quantise import TABLE_BLOCK

log = logging.getLogger(__name__)

# Frozen in every stage (train_reader.load_model), so the base model's table is the exact one; an
# int8 file holds it rounded (BERT's and MPNet's names).
FROZEN_SUFFIX = ".embeddings.word_embeddings.weight"


def onnx_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The PyTorch state dict (name -> array) of a BERT sequence classifier exported to ONNX (fp32 or int8)."""
    return _read(path)[0]


def _read(path: Path) -> tuple[dict[str, np.ndarray], bool]:
    """The export's state dict, and whether its weights were quantised (and are read back rounded)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    stored = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    quantised = any(name.endswith("_quantized") for name in stored)
    constants = _dequantised(stored)
    weights = {name: value for name, value in constants.items() if not name.startswith("onnx::")}
    # Quantising turns the pooler's and the classifier's Gemm into a MatMul by the transposed weight.
    for name in [name for name in weights if name.endswith("_Transposed")]:
        weights[name.removesuffix("_Transposed")] = weights.pop(name).T.copy()
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type not in ("MatMul", "MatMulInteger"):
            continue
        inputs = [name.removesuffix("_quantized") for name in node.input]
        constant = next((name for name in inputs if name in constants and name not in weights), None)
        if constant is None:
            continue
        bias = _bias_after(node, consumers, weights)
        if bias is None:
            raise ValueError(f"{path}: the MatMul on {constant} is not followed by a named bias; not a reader export")
        # torch.nn.Linear keeps (out, in); the export multiplies by its transpose.
        weights[bias.removesuffix(".bias") + ".weight"] = constants[constant].T.copy()
    return weights, quantised


def _dequantised(constants: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The constants with each int8 weight (name_quantized, name_scale, name_zero_point) and each
    4-bit table (name_Q4, name_scales) as one fp32 `name`."""
    out = dict(constants)
    for name in [name for name in constants if name.endswith("_Q4")]:
        base = name.removesuffix("_Q4")
        out[base] = _from_four_bits(out.pop(name), out.pop(base + "_scales"))
    for name in [name for name in constants if name.endswith("_quantized")]:
        base = name.removesuffix("_quantized")
        if base + "_scale" not in constants:
            continue  # an activation quantised at run time, not a weight
        scale, zero = out.pop(base + "_scale"), out.pop(base + "_zero_point")
        # One scale per output column (the last axis) for a MatMul weight, one for a whole table.
        out[base] = (out.pop(name).astype(np.float32) - zero.astype(np.float32)) * scale.astype(np.float32)
    return out


def _from_four_bits(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """A table stored by GatherBlockQuantized (symmetric, one scale per TABLE_BLOCK values of a row,
    the row's last block padded) back in fp32."""
    rows, columns = values.shape
    padded = np.zeros((rows, scales.shape[1] * TABLE_BLOCK), dtype=np.float32)
    padded[:, :columns] = values.astype(np.float32)
    return (padded.reshape(rows, scales.shape[1], TABLE_BLOCK) * scales[:, :, None]).reshape(rows, -1)[:, :columns]


def _bias_after(node, consumers: dict[str, list], weights: dict[str, np.ndarray]) -> str | None:
    """The bias added to the node's output, past the Cast and Mul an int8 MatMul is followed by."""
    output = node.output[0]
    for _ in range(3):
        following = consumers.get(output, [])
        for add in following:
            if add.op_type == "Add":
                return next((name for name in add.input if name.endswith(".bias") and name in weights), None)
        step = next((n for n in following if n.op_type in ("Cast", "Mul")), None)
        if step is None:
            return None
        output = step.output[0]
    return None


def load_onnx_weights(model, path: Path) -> None:
    """Load the weights of the ONNX export at `path` into a transformers classifier (BERT, MPNet):
    every weight the model has must be there (an export with more layers gives its first ones)."""
    import torch

    expected = model.state_dict()
    weights, quantised = _read(path)
    if quantised:
        log.warning("%s is int8: starting from its weights as rounded; the frozen word-piece table stays the base's", path)
        weights = {name: value for name, value in weights.items() if not name.endswith(FROZEN_SUFFIX)}
    # Layers past the model's own are left out: a smaller reader can start from a larger one's first layers.
    state = {name: torch.from_numpy(np.array(value)) for name, value in weights.items() if name in expected}
    # Buffers the export folds away (position ids) keep the model's own values.
    for name, value in expected.items():
        if name not in state and not name.endswith("position_ids") and not name.endswith(FROZEN_SUFFIX):
            raise ValueError(f"{path} has no weight {name}: it was not exported from a model of this shape")
        state.setdefault(name, value)
    model.load_state_dict(state, strict=True)
