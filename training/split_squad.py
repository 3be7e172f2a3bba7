"""Write the SQuAD 2.0 dev split (training/squad.split_dev) as SQuAD files `sourcebook eval --squad` reads.

python -m training.split_squad [--data DIR] [--out DIR] writes squad-calibrate.json (the reader's
threshold is fitted on it) and squad-test.json (touched only by the final check).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.squad import load_articles, split_dev


def main() -> None:
    """Write the calibration and test articles of the dev file as two SQuAD JSON files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/squad"))
    parser.add_argument("--out", type=Path, default=Path(".reader-training"))
    args = parser.parse_args()
    parts = split_dev(load_articles(args.data / "dev-v2.0.json.gz"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("calibrate", "test"):
        path = args.out / f"squad-{name}.json"
        path.write_text(json.dumps({"version": "v2.0", "data": parts[name]}))
        print(f"{path}: {len(parts[name])} articles")


if __name__ == "__main__":
    main()
