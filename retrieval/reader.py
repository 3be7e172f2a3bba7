"""The only module that loads the reader: (question, sentence in context) in, probability it answers out.

The reader is a cross-encoder trained by this project (`make train-reader`, training/) from the
all-MiniLM-L6-v2 weights and SQuAD; its ONNX export and tokenizer live in models/reader/ and run
on ONNX Runtime directly, as the embedder's export does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.embedder import ModelTurns, _cores, private_tokenizer
from retrieval.settings import READER_DIR


def reader_context(
    sentence: str, *, title: str, heading: str | None = None, previous: str = "", subjects: Sequence[str] = ()
) -> str:
    """The text the reader reads beside a question: the sentence first, then what helps read it.

    The sentence comes first so a long context is cut, never the sentence; the document's title
    and section tell what "it" or "the company" is, and so may the sentence before. `subjects`
    are names the document goes by that none of them says, in brackets after the title.
    """
    named = f"{title} ({', '.join(subjects)})" if subjects else title
    where = f"{named} § {heading}" if heading and heading != title else named
    return f"{sentence} [SEP] {where}. {previous}".strip()


# A question keeps at most this share of the input; the rest is the sentence and its context.
QUESTION_SHARE = 0.5


class ReaderUnavailable(RuntimeError):
    """The reader's files are missing or unreadable."""


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    """What the export says about itself (reader.json)."""

    max_length: int


def one_product(weights: np.ndarray) -> bytes:
    """An ONNX model of one MatMulInteger, as the quantised readers hold them: uint8 activations
    `a` (zero point 0) times the int8 `weights` (zero point 0), int32 out."""
    from onnx import TensorProto, helper, numpy_helper

    rows, columns = weights.shape
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "a_zero", "w_zero"], ["y"])], "one_product",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, rows])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, columns])],
        [numpy_helper.from_array(weights.astype(np.int8), "w"),
         numpy_helper.from_array(np.zeros(columns, dtype=np.int8), "w_zero"),
         numpy_helper.from_array(np.array(0, dtype=np.uint8), "a_zero")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@functools.cache
def signed_products_exact() -> bool:
    """Whether ONNX Runtime on this CPU multiplies unsigned activations by signed int8 weights
    exactly: it does with VNNI, and without it adds products in pairs in 16 bits, which saturate.
    Asked of ONNX Runtime itself, on one product of the largest values (a few milliseconds, once)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(one_product(np.full((64, 1), 127)), providers=["CPUExecutionProvider"])
    (product,) = session.run(None, {"a": np.full((1, 64), 255, dtype=np.uint8)})
    return int(product[0, 0]) == 255 * 127 * 64


def shift_int8_weights(graph, *, signed: bool) -> bool:
    """Shift every MatMulInteger weight of the ONNX model `graph`, and its zero point, by 128 in place:
    to int8 (`signed`) or to uint8, the same products either way. Whether any was shifted."""
    import onnx
    from onnx import numpy_helper

    stored, shifted, by = (
        (onnx.TensorProto.UINT8, np.int8, -128) if signed else (onnx.TensorProto.INT8, np.uint8, 128)
    )
    constants = {tensor.name: tensor for tensor in graph.graph.initializer}
    # Inputs 1 and 3 of MatMulInteger are the weight and its zero point.
    names = {name for node in graph.graph.node if node.op_type == "MatMulInteger" for name in node.input[1::2]
             if name in constants and constants[name].data_type == stored}
    for name in names:
        values = numpy_helper.to_array(constants[name]).astype(np.int16) + by
        constants[name].CopyFrom(numpy_helper.from_array(values.astype(shifted), name))
    return bool(names)


def signed_where_exact(model: Path) -> bytes | str:
    """The int8 export at `model`, whose weights are stored unsigned, as ONNX Runtime should run it
    on this CPU: the weights shifted back to signed where signed products are exact
    (`signed_products_exact`), else the file as it is.

    They are stored unsigned (training/quantise.py) because ONNX Runtime's kernels for unsigned
    activations times signed weights saturate on a CPU without VNNI, and its unsigned times
    unsigned ones do not. With VNNI the signed kernels are exact too, and about three times faster
    (the second reader's four pairs: 61 ms against 198 ms, 2026-12-06).
    """
    if not signed_products_exact():
        return str(model)
    import onnx

    graph = onnx.load(str(model))
    shift_int8_weights(graph, signed=True)
    return graph.SerializeToString()


class Reader:
    """The exported cross-encoder on ONNX Runtime: scores (question, context) pairs from 0 to 1."""

    def __init__(self, directory: Path = READER_DIR, *, turns: ModelTurns | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        directory = Path(directory)
        model, tokenizer_file, config_file = (directory / name for name in ("model.onnx", "tokenizer.json", "reader.json"))
        for path in (model, tokenizer_file, config_file):
            if not path.is_file():
                raise ReaderUnavailable(f"the reader model file {path} is missing: run `make train-reader` to build it")
        try:
            said = json.loads(config_file.read_text())
            self.config = ReaderConfig(max_length=int(said["max_length"]))
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            options = onnxruntime.SessionOptions()
            # One thread per run; a question's pairs are read one to a run, the runs spread over
            # the cores instead (score): on two cores faster than one run on both.
            options.intra_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            int8, unsigned = said.get("weights") == "int8", bool(said.get("unsigned_weights"))
            # Weights in 7 bits are exact in the signed kernels on every CPU (training/quantise.py).
            seven_bits = said.get("weight_bits") == 7
            served = signed_where_exact(model) if int8 and unsigned else str(model)
            self.session = onnxruntime.InferenceSession(served, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime and tokenizers raise their own classes for a bad file
            raise ReaderUnavailable(
                f"the reader model in {directory} could not be loaded ({error}): run `make train-reader` to rebuild it"
            ) from error
        if int8 and not unsigned and not seven_bits:
            # ONNX Runtime multiplies signed 8-bit weights wrongly on a CPU without VNNI (training/quantise.py).
            raise ReaderUnavailable(
                f"the reader model {model} stores its int8 weights signed, which a CPU without VNNI multiplies "
                f"wrongly: run `python -m training.quantise {directory} --unsigned` to store them unsigned"
            )
        self.directory = directory
        # Runs take turns with the embedder's, so an upload's embedding goes before questions.
        self._turns = turns or nullcontext()
        self._inputs = {node.name for node in self.session.get_inputs()}
        self._spread = ThreadPoolExecutor(max_workers=_cores(), thread_name_prefix="sourcebook-reader")
        self._question_tokens = int(self.config.max_length * QUESTION_SHARE)
        self._questions = private_tokenizer(tokenizer, truncate_at=None)
        self._pairs = private_tokenizer(tokenizer, truncate_at=None)
        self._pairs.enable_truncation(self.config.max_length, strategy="only_second")

    def _fit_question(self, question: str) -> str:
        """Cut a question longer than its share of the input at a word piece (never an error)."""
        encoding = self._questions.encode(question, add_special_tokens=False)
        if len(encoding.ids) <= self._question_tokens:
            return question
        return question[: encoding.offsets[self._question_tokens - 1][1]]

    def score(self, question: str, contexts: Sequence[str]) -> np.ndarray:
        """Return, for each context, the probability that its sentence answers the question."""
        if not contexts:
            return np.zeros(0, dtype=np.float32)
        question = self._fit_question(question)
        encodings = self._pairs.encode_batch([(question, context) for context in contexts])
        # One pair per run, the runs spread over the cores. The int8 readers quantise a run's
        # activations with one scale for the whole run, so in a run of several pairs each pair's
        # probability moved with the others' (the second reader: 0.63 alone, 0.51 beside three
        # others; docs/QUALITY.md, "A pair's probability, its own"); alone, a pair is never padded.
        values = self._spread.map(self._probability, encodings)
        return np.fromiter(values, dtype=np.float32, count=len(encodings))

    def _probability(self, encoding) -> float:
        """One model run over one encoded pair: the probability that its sentence answers."""
        ids = np.array([encoding.ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                 "token_type_ids": np.array([encoding.type_ids], dtype=np.int64)}
        with self._turns:
            logits = self.session.run(None, {name: value for name, value in feeds.items() if name in self._inputs})[0]
        return float(1.0 / (1.0 + np.exp(-float(logits[0, 0]))))
