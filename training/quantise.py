"""Quantise an exported reader's weights to int8, in place: python -m training.quantise [DIR] [--table-bits 4].

Dynamic quantisation on ONNX Runtime: each matrix multiplication's weights are stored as int8
with one scale per output column (per channel), and activations are quantised as the model
runs. The file is a quarter of the size and the reader about a third faster on two cores; the
README ("Quality") says what it costs in answers. With `--table-bits 4` the word-piece table
is stored in 4 bits instead (one scale per 32 values), as the second reader's is: its table is a
fifth of its weights, and only looked up, never multiplied. reader.json records it, so an export
is never quantised twice.

The int8 weights are stored unsigned (each value plus 128, zero point 128; `store_unsigned`): the
same numbers, but ONNX Runtime then multiplies them by the unsigned activations in its u8u8
kernels, which widen to 16 bits first and are exact. With signed weights it takes its u8s8
kernels, which on a CPU without VNNI (AVX2 alone, or AVX-512 without VNNI) add the products in
pairs in 16 bits and saturate: there the second reader gave the founders' sentence of "Who
founded Xiaohongshu?" 0.15 instead of 0.99, and qa.jsonl's AUC fell to 0.62 (docs/QUALITY.md,
"Readers that read alike on every CPU"). `python -m training.quantise DIR --unsigned` stores an
int8 export's weights so. With `--weight-bits 7` the weights are kept within -64..64 instead and
stay signed: a pair of their products fits in 16 bits, so the u8s8 kernels are exact on every CPU,
and on one without VNNI faster than the u8u8 ones (the second reader's pass about a sixth).

`as_stored(model)` rounds a PyTorch reader's linear weights in place as `quantise` will store
them, for the span of a training step (`train_reader --int8-aware`): the step's gradient is taken
at the weights the int8 file will hold, and moves the exact ones, so a stage started from an int8
file keeps changes smaller than a step once they add up past it, instead of losing them when
quantised again.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_DIR = Path("models/reader")
# Values of a 4-bit table that share one scale.
TABLE_BLOCK = 32
# Symmetric int8 as ONNX Runtime quantises weights: -127..127, the largest magnitude at 127.
INT8_LIMIT = 127
# In 7 bits (ONNX Runtime's `reduce_range`): -64..64. A pair of such weights times unsigned
# activations (at most 255 each) stays within 16 bits, so the u8s8 kernels are exact on every CPU.
SEVEN_BIT_LIMIT = 64
# The largest magnitude stored, by the bits the weights use (`quantise`'s `weight_bits`).
WEIGHT_LIMIT = {8: INT8_LIMIT, 7: SEVEN_BIT_LIMIT}


def quantise(directory: Path, *, table_bits: int = 8, weight_bits: int = 8) -> Path:
    """Replace directory/model.onnx by its int8 form (the word-piece table in `table_bits`); return the file.

    With `weight_bits` 7 the weights are -64..64 (ONNX Runtime's `reduce_range`) and stay signed:
    exact in its u8s8 kernels on every CPU (SEVEN_BIT_LIMIT), which are faster than the u8u8 ones."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model, config_file = directory / "model.onnx", directory / "reader.json"
    config = json.loads(config_file.read_text())
    if config.get("weights") == "int8":
        raise ValueError(f"{model} is already int8")
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        prepared, quantised = Path(scratch) / "prepared.onnx", Path(scratch) / "model.onnx"
        # Graph clean-up first (constant folding, shapes), as ONNX Runtime advises before quantising;
        # the symbolic shape pass cannot follow this export's attention mask, and is not needed.
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        if table_bits == 4:
            _table_in_four_bits(prepared)
        # Left alone, dynamic quantisation also stores the table (a Gather) in int8.
        op_types = ["MatMul"] if table_bits == 4 else None
        quantize_dynamic(str(prepared), str(quantised), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=op_types, reduce_range=weight_bits == 7)
        if weight_bits == 8:
            _store_unsigned(quantised)
        os.replace(quantised, model)
    stored = {"weight_bits": 7} if weight_bits == 7 else {"unsigned_weights": True}
    extra = {"word_piece_table_bits": 4} if table_bits == 4 else {}
    config_file.write_text(json.dumps({**config, "weights": "int8", **stored, **extra}, indent=2))
    return model


def rounded_as_stored(weight, limit: int = INT8_LIMIT):
    """A linear layer's weight (out, in) as `quantise` stores it: int8 with one scale per output
    (a MatMul's column), the output's largest magnitude at `limit`, times that scale."""
    scale = weight.abs().amax(dim=1, keepdim=True) / limit
    scale = scale.where(scale > 0, scale.new_ones(()))
    return (weight / scale).round().clamp(-limit, limit) * scale


@contextmanager
def as_stored(model, limit: int = INT8_LIMIT) -> Iterator[None]:
    """Within: every linear weight of the model is as `quantise` will store it; on leaving, the
    exact weights are put back in place. A backward pass inside takes the gradient at the rounded
    weights, which the optimiser then applies to the exact ones (a straight-through estimate)."""
    import torch

    weights = [module.weight for module in model.modules() if isinstance(module, torch.nn.Linear)]
    with torch.no_grad():
        exact = [weight.detach().clone() for weight in weights]
        for weight in weights:
            weight.copy_(rounded_as_stored(weight, limit))
    try:
        yield
    finally:
        with torch.no_grad():
            for weight, value in zip(weights, exact):
                weight.copy_(value)


def store_unsigned(directory: Path) -> Path:
    """Store an int8 export's signed weights unsigned, in place (the same values; see the module's
    docstring); return the file. An export already so stored is left as it is."""
    model, config_file = directory / "model.onnx", directory / "reader.json"
    config = json.loads(config_file.read_text())
    if config.get("weights") != "int8":
        raise ValueError(f"{model} is not int8: quantise it (its weights are then stored unsigned)")
    _store_unsigned(model)
    # The reader refuses an int8 export without this (retrieval/reader.py).
    config_file.write_text(json.dumps({**config, "unsigned_weights": True}, indent=2))
    return model


def _store_unsigned(path: Path) -> None:
    """Rewrite the model at `path` with every signed weight of a MatMulInteger, and its zero
    point, shifted by 128 into uint8 (a model with none is left untouched)."""
    import onnx

    from retrieval.reader import shift_int8_weights

    model = onnx.load(str(path))
    if not shift_int8_weights(model, signed=False):
        return
    staging = path.with_suffix(".unsigned")
    onnx.save(model, str(staging))
    os.replace(staging, path)


def _table_in_four_bits(path: Path) -> None:
    """Rewrite the model at `path` with its lookups (the word-piece and position tables) in 4 bits."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=TABLE_BLOCK, is_symmetric=True, op_types_to_quantize=("Gather",))
    quantiser = MatMulNBitsQuantizer(onnx.load(str(path)), algo_config=config)
    quantiser.process()
    quantiser.model.save_model_to_file(str(path), use_external_data_format=False)


def main() -> None:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--table-bits", type=int, choices=(4, 8), default=8, help="bits of the word-piece table")
    parser.add_argument("--weight-bits", type=int, choices=(7, 8), default=8,
                        help="7: weights -64..64, stored signed (exact and faster on a CPU without VNNI)")
    parser.add_argument("--unsigned", action="store_true",
                        help="only store an int8 export's signed weights unsigned (exports made before they were)")
    args = parser.parse_args()
    try:
        path = (store_unsigned(args.directory) if args.unsigned
                else quantise(args.directory, table_bits=args.table_bits, weight_bits=args.weight_bits))
    except ValueError as error:
        raise SystemExit(str(error)) from error
    stored = "in 7 bits, signed" if args.weight_bits == 7 and not args.unsigned else "stored unsigned"
    print(f"{path}: int8 (weights {stored}), {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
