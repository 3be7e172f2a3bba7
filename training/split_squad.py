"""Write the SQuAD 2.0 dev split (training/squad.split_dev) as SQuAD files `sourcebook eval --squad` reads.

python -m training.split_squad [--data DIR] [--out DIR] writes squad-calibrate.json (the reader's
threshold is fitted on it), squad-test.json (touched only by the final check) and, when the data
folder has SQuAD v1.1's dev file, squad-unseen.json (its articles SQuAD 2.0's dev file lacks:
answerable questions no choice was made on; training/squad.unseen_articles).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.squad import load_articles, split_dev, unseen_articles


def main() -> None:
    """Write the calibration, test and unseen articles as SQuAD JSON files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/squad"))
    parser.add_argument("--out", type=Path, default=Path(".reader-training"))
    args = parser.parse_args()
    v2_dev = load_articles(args.data / "dev-v2.0.json.gz")
    split = split_dev(v2_dev)
    parts = {"calibrate": ("v2.0", split["calibrate"]), "test": ("v2.0", split["test"])}
    v1_dev = args.data / "dev-v1.1.json.gz"
    if v1_dev.exists():
        parts["unseen"] = ("1.1", unseen_articles(load_articles(v1_dev), v2_dev))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (version, articles) in parts.items():
        path = args.out / f"squad-{name}.json"
        path.write_text(json.dumps({"version": version, "data": articles}))
        print(f"{path}: {len(articles)} articles")


if __name__ == "__main__":
    main()
