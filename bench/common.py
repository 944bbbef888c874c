"""What the benchmark scripts share that needs nothing heavy: their scratch folder."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def add_workdir_argument(parser: argparse.ArgumentParser) -> None:
    """``--workdir``: where a benchmark keeps its files (default: a temporary folder)."""
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the files here (default: a temporary folder, removed at the end)",
    )


@contextmanager
def workdir_of(args: argparse.Namespace, prefix: str) -> Iterator[Path]:
    """``args.workdir`` (created if missing), else a temporary folder removed on exit."""
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        yield args.workdir.resolve()
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        yield Path(scratch)
