"""The landing contract checked in Python (docs/data-contract.md): what a landing file must
hold to be loaded whole, for producers that want to check a file before they drop it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.world.landing import (
    DATASETS,
    MAX_TX_AMOUNT,
    MIN_EVENT_DATE,
    PARTITION_DIR,
    LandingDataset,
)


def validate_landing_file(path: Path | str) -> list[str]:
    """Check one landing file against the contract; return the problems found (empty if none).

    Checks the layout (dataset folder, ``key=YYYY-MM-DD`` partition, date in the file name), that
    the file is parquet, the required columns and types, and the row rules that one file can
    show: non-null keys, 0 <= tx_amount <= MAX_TX_AMOUNT, timestamps from MIN_EVENT_DATE to the
    end of the partition day, one content per transaction_id. Rules that need other files (a report not
    before its transaction) are checked by the warehouse.
    """
    path = Path(path)
    problems: list[str] = []
    dataset = DATASETS.get(path.parent.parent.name)
    match = PARTITION_DIR.match(path.parent.name)
    day: dt.date | None = None
    if dataset is None:
        problems.append(
            f"{path}: not under a dataset folder ({' or '.join(DATASETS)}) two levels up"
        )
    if match is None or (dataset and match["key"] != dataset.partition_key):
        expected = f"{dataset.partition_key}=YYYY-MM-DD" if dataset else "<key>=YYYY-MM-DD"
        problems.append(f"{path}: partition folder {path.parent.name!r} is not {expected}")
    else:
        try:
            day = dt.date.fromisoformat(match["day"])
        except ValueError:
            problems.append(f"{path}: partition date {match['day']!r} is not a valid date")
    if not path.name.endswith(".parquet"):
        problems.append(f"{path}: file name does not end with .parquet")
    if day and day.isoformat() not in path.name:
        problems.append(f"{path}: file name does not contain the partition date {day.isoformat()}")
    if dataset is None:
        return problems

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        return [*problems, f"{path}: not a readable parquet file ({str(exc).splitlines()[0]})"]

    usable = []
    for expected in dataset.schema:
        if expected.name not in table.column_names:
            problems.append(f"{path}: missing column {expected.name} ({expected.type})")
            continue
        actual = table.schema.field(expected.name).type
        if actual != expected.type:
            problems.append(f"{path}: column {expected.name} is {actual}, expected {expected.type}")
            continue
        usable.append(expected.name)
    if dataset.partition_key in table.column_names:
        problems.append(
            f"{path}: column {dataset.partition_key} repeats the partition key; leave it to the folder name"
        )
    problems += [f"{path}: {p}" for p in _row_problems(table, dataset, usable, day)]
    return problems


def _row_problems(
    table: pa.Table, dataset: LandingDataset, usable: list[str], day: dt.date | None
) -> list[str]:
    problems = []
    for name in usable:
        nulls = table.column(name).null_count
        if nulls:
            problems.append(f"{nulls} row(s) with null {name}")
    if "tx_amount" in usable:
        amount = table.column("tx_amount")
        bad = pc.sum(pc.or_(pc.less(amount, 0), pc.greater(amount, MAX_TX_AMOUNT))).as_py() or 0
        nan = pc.sum(pc.is_nan(amount)).as_py() or 0
        if bad or nan:
            problems.append(f"{bad + nan} row(s) with tx_amount outside [0, {MAX_TX_AMOUNT:g}]")
    if dataset.time_column in usable:
        start = pa.scalar(dt.datetime.combine(MIN_EVENT_DATE, dt.time()), pa.timestamp("us"))
        early = pc.sum(pc.less(table.column(dataset.time_column), start)).as_py() or 0
        if early:
            problems.append(f"{early} row(s) with {dataset.time_column} before {MIN_EVENT_DATE}")
    if day and dataset.time_column in usable:
        end = pa.scalar(
            dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), pa.timestamp("us")
        )
        late = pc.sum(pc.greater_equal(table.column(dataset.time_column), end)).as_py() or 0
        if late:
            problems.append(
                f"{late} row(s) with {dataset.time_column} after the end of partition day {day}"
            )
    if "transaction_id" in usable and table.num_rows:
        columns = [c for c in dataset.schema.names if c in usable]
        distinct = table.select(columns).group_by(columns).aggregate([])
        duplicates = table.num_rows - distinct.num_rows
        if duplicates:
            problems.append(f"{duplicates} exact duplicate row(s) (dropped by the warehouse)")
        conflicting = distinct.num_rows - len(pc.unique(distinct.column("transaction_id")))
        if conflicting:
            problems.append(f"{conflicting} transaction_id(s) with more than one content")
    return problems
