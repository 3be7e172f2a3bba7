"""Average the weights of readers fine-tuned from one start: python -m training.average --out DIR CHECKPOINT...

Stages trained from the same weights with different data and seeds land in one basin of the
loss; their mean is often a better reader than either (a "model soup", Wortsman et al. 2022),
at no cost when it runs. Each input is a train_reader checkpoint.pt or a model.onnx (fp32, or
int8 as `training.quantise` stores it). `--shares 3,1` weighs the inputs (equal by default);
`--base` and `--layers` name the shape, as for train_reader (the second reader:
`--base .reader-training/all-mpnet-base-v2 --layers 10`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from training.onnx_weights import load_onnx_weights
from training.train_reader import export_onnx, load_model, sha256


def average(sources: list[Path], out: Path, *, layers: int = 6, max_length: int = 96,
            base: Path | None = None, shares: list[float] | None = None) -> Path:
    """Export the mean of the sources' weights, weighed by `shares`, to `out`; return its model.onnx."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from retrieval.embedder import bundled_model_path

    if len(sources) < 2:
        raise ValueError(f"averaging needs at least two readers, got {len(sources)}")
    shares = [1.0] * len(sources) if shares is None else shares
    if len(shares) != len(sources) or min(shares) < 0 or sum(shares) <= 0:
        raise ValueError(f"one share, none negative, per reader: {len(sources)} readers, shares {shares}")
    model, tokenizer = load_model(base or bundled_model_path(), layers)
    states = []
    for source in sources:
        if source.suffix == ".onnx":
            load_onnx_weights(model, source)
        else:
            model.load_state_dict(torch.load(source, weights_only=False)["model"])
        # Copies: the next source is loaded into the same tensors.
        states.append({name: value.clone() for name, value in model.state_dict().items()})
    total = sum(shares)
    mean = {name: sum(state[name].double() * share for state, share in zip(states, shares)).div(total).to(value.dtype)
            if value.is_floating_point() else value for name, value in states[0].items()}
    model.load_state_dict(mean)
    return export_onnx(model, tokenizer, out, max_length=max_length)


def main() -> None:
    """Command-line entry: average, export, print the file and its sha256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the averaged reader's export goes")
    parser.add_argument("--base", type=Path, default=None, help="the base model's folder (default: the bundled MiniLM)")
    parser.add_argument("--layers", type=int, default=6, help="layers the readers keep (default 6)")
    parser.add_argument("--shares", type=lambda text: [float(x) for x in text.split(",")], default=None,
                        help="each reader's weight, in order, by commas: 3,1 (default: equal)")
    parser.add_argument("sources", type=Path, nargs="+", help="checkpoint.pt or model.onnx files")
    args = parser.parse_args()
    try:
        path = average(args.sources, args.out, layers=args.layers, base=args.base, shares=args.shares)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    print(json.dumps({"file": str(path), "sha256": sha256(path), "sources": [str(s) for s in args.sources],
                      "shares": args.shares}))


if __name__ == "__main__":
    main()
