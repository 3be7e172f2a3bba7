"""Read a reader's weights back out of its ONNX export, so a new stage can start from a shipped model.

The checkpoints `make train-reader` writes stay on the machine that trained; what is committed is
models/reader/model.onnx. The exporter keeps most weights under their PyTorch names, but each
linear layer's weight becomes a transposed MatMul constant with a generated name; it is named
again here by the bias that the graph adds straight after that MatMul.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The PyTorch state dict (name -> array) of a BERT sequence classifier exported to ONNX."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    if any(init.name.endswith("_quantized") for init in graph.initializer):
        raise ValueError(
            f"{path} is quantised to int8 (training.quantise): its weights are rounded; start from the fp32 "
            "export a stage writes before quantising, or from a checkpoint.pt"
        )
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    weights = {name: value for name, value in constants.items() if not name.startswith("onnx::")}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        constant = next((name for name in node.input if name in constants and name not in weights), None)
        if constant is None:
            continue
        bias = next(
            (name for add in consumers.get(node.output[0], []) if add.op_type == "Add"
             for name in add.input if name.endswith(".bias") and name in weights),
            None,
        )
        if bias is None:
            raise ValueError(f"{path}: the MatMul on {constant} is not followed by a named bias; not a reader export")
        # torch.nn.Linear keeps (out, in); the export multiplies by its transpose.
        weights[bias.removesuffix(".bias") + ".weight"] = constants[constant].T.copy()
    return weights


def load_onnx_weights(model, path: Path) -> None:
    """Load the weights of the ONNX export at `path` into a transformers BERT classifier: every
    weight the model has must be there (an export with more layers gives its first ones)."""
    import torch

    expected = model.state_dict()
    # Layers past the model's own are left out: a smaller reader can start from a larger one's first layers.
    state = {name: torch.from_numpy(np.array(value)) for name, value in onnx_state_dict(path).items() if name in expected}
    # Buffers the export folds away (position ids) keep the model's own values.
    for name, value in expected.items():
        if name not in state and not name.endswith("position_ids"):
            raise ValueError(f"{path} has no weight {name}: it was not exported from a model of this shape")
        state.setdefault(name, value)
    model.load_state_dict(state, strict=True)
