"""What the landing feeds delivered for a business day: the partitions ``ml operate`` gates on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ml.world.landing import DATASETS


@dataclass
class FeedStatus:
    """What one landing feed delivered for the day."""

    feed: str
    partition: Path
    files: int
    rows: int


def feed_status(root: Path, day: dt.date) -> list[FeedStatus]:
    """The day's partition of each landing feed: files and rows (parquet footers only)."""
    import pyarrow.parquet as pq

    status = []
    for dataset in DATASETS.values():
        folder = dataset.partition_dir(root, day)
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        status.append(FeedStatus(dataset.name, folder, len(files), rows))
    return status
