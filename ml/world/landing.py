"""Landing files: the contract between a transaction feed and the lakehouse.

The landing zone holds two datasets, partitioned by day in hive style, one parquet file per
partition (see docs/data-contract.md)::

    <root>/transactions/tx_date=YYYY-MM-DD/transactions_YYYY-MM-DD.parquet
    <root>/fraud_reports/report_date=YYYY-MM-DD/fraud_reports_YYYY-MM-DD.parquet

This module owns the contract (schemas and layout as constants), writes a simulated world as
landing files (atomically, idempotently, optionally only a range of days), reads landing files
back and checks a file against the contract.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.platform.errors import ConfigError, LandingError
from ml.platform.settings import LandingSettings, SimulationSettings
from ml.world.handbook import SECONDS_PER_DAY
from ml.world.simulator import SimulatedWorld, simulate

# Zero is valid (a zero-amount authorisation): 0 <= tx_amount <= MAX_TX_AMOUNT. Both bounds are
# the settings' defaults (the dbt vars max_tx_amount and min_event_date come from the settings).
MAX_TX_AMOUNT = LandingSettings.model_fields["max_tx_amount"].default
# No landed timestamp before this day.
MIN_EVENT_DATE = LandingSettings.model_fields["min_event_date"].default

TRANSACTIONS_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.int64(), nullable=False),
        pa.field("tx_datetime", pa.timestamp("us"), nullable=False),
        pa.field("customer_id", pa.int64(), nullable=False),
        pa.field("terminal_id", pa.int64(), nullable=False),
        pa.field("tx_amount", pa.float64(), nullable=False),
    ]
)
FRAUD_REPORTS_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.int64(), nullable=False),
        pa.field("reported_at", pa.timestamp("us"), nullable=False),
        pa.field("fraud_scenario", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class LandingDataset:
    """One landing dataset: folder, hive partition key, file name prefix and file schema."""

    name: str
    partition_key: str
    schema: pa.Schema
    # Column whose timestamp must fall before the end of the partition day.
    time_column: str

    def partition_dir(self, root: Path | str, day: dt.date) -> Path:
        return Path(root) / self.name / f"{self.partition_key}={day.isoformat()}"

    def file_name(self, day: dt.date) -> str:
        return f"{self.name}_{day.isoformat()}.parquet"

    def file_path(self, root: Path | str, day: dt.date) -> Path:
        return self.partition_dir(root, day) / self.file_name(day)


TRANSACTIONS = LandingDataset("transactions", "tx_date", TRANSACTIONS_SCHEMA, "tx_datetime")
FRAUD_REPORTS = LandingDataset("fraud_reports", "report_date", FRAUD_REPORTS_SCHEMA, "reported_at")
DATASETS: dict[str, LandingDataset] = {d.name: d for d in (TRANSACTIONS, FRAUD_REPORTS)}
TRANSACTIONS_PARTITION_KEY = TRANSACTIONS.partition_key
FRAUD_REPORTS_PARTITION_KEY = FRAUD_REPORTS.partition_key

PARTITION_DIR = re.compile(r"^(?P<key>[a-z_]+)=(?P<day>\d{4}-\d{2}-\d{2})$")


@dataclass
class LandingWriteResult:
    """What :func:`write_landing` wrote."""

    root: Path
    days: list[dt.date]
    files: list[Path] = field(default_factory=list)
    transactions: int = 0
    frauds: int = 0
    frauds_by_scenario: dict[int, int] = field(default_factory=dict)
    fraud_reports: int = 0
    # Reports of the written days' frauds that are dated after the horizon (not landed yet).
    reports_pending: int = 0
    simulate_seconds: float = 0.0
    write_seconds: float = 0.0

    @property
    def fraud_rate(self) -> float:
        return self.frauds / self.transactions if self.transactions else 0.0


def write_landing(
    world: SimulatedWorld,
    root: Path | str,
    from_day: dt.date | None = None,
    to_day: dt.date | None = None,
) -> LandingWriteResult:
    """Write the world's landing files for days ``from_day..to_day`` (inclusive; default: all).

    Day D gets the transactions made on D and the fraud reports reported on D; reports dated
    after the simulated horizon are not written. Each file is written under a temporary name and
    renamed, so a reader never sees a partial file and rewriting a day replaces its file. A day
    without rows gets an empty file with the contract schema.
    """
    from_day, to_day = _day_range(world.start, world.end, from_day, to_day)
    first = (from_day - world.start).days
    last = (to_day - world.start).days
    root = Path(root)
    result = LandingWriteResult(
        root=root, days=[from_day + dt.timedelta(days=i) for i in range(last - first + 1)]
    )

    if world.transactions_materialized:
        # the frame was built (and may have been edited, as tests do): it is the world now
        return _write_frame(world, root, first, last, result)
    # Tables are built a day at a time in the writing threads, from the compact ledger: no
    # full-length table or copy is made (17.7M rows in a world of 10x the default size).
    ledger = world.ledger
    tx_bounds = ledger.day_bounds
    reports = ledger.reports()
    report_bounds = np.searchsorted(
        reports["report_seconds"] // SECONDS_PER_DAY, np.arange(world.settings.days + 1)
    )

    def transactions(offset: int) -> pa.Table:
        columns = ledger.columns(int(tx_bounds[offset]), int(tx_bounds[offset + 1]))
        return pa.Table.from_pydict(columns, schema=TRANSACTIONS_SCHEMA)

    def fraud_reports(offset: int) -> pa.Table:
        rows = slice(int(report_bounds[offset]), int(report_bounds[offset + 1]))
        columns = {
            "transaction_id": reports["transaction_id"][rows],
            "reported_at": ledger.datetime(reports["report_seconds"][rows]),
            "fraud_scenario": reports["fraud_scenario"][rows],
        }
        return pa.Table.from_pydict(columns, schema=FRAUD_REPORTS_SCHEMA)

    _write_days(result, root, first, transactions, fraud_reports)
    lo, hi = int(tx_bounds[first]), int(tx_bounds[last + 1])
    result.transactions = hi - lo
    written = (ledger.frauds >= lo) & (ledger.frauds < hi)
    result.frauds = int(written.sum())
    scenarios, counts = np.unique(
        ledger.scenario[ledger.fraud_rows(ledger.frauds[written])], return_counts=True
    )
    result.frauds_by_scenario = {int(k): int(v) for k, v in zip(scenarios, counts, strict=True)}
    horizon = world.settings.days * SECONDS_PER_DAY
    result.reports_pending = int((ledger.report_seconds[written] >= horizon).sum())
    return result


def _write_frame(
    world: SimulatedWorld, root: Path, first: int, last: int, result: LandingWriteResult
) -> LandingWriteResult:
    """:func:`write_landing` from ``world.transactions`` (a full-length table)."""
    tx = world.transactions
    tx_table = pa.Table.from_pandas(tx[list(TRANSACTIONS_SCHEMA.names)], preserve_index=False)
    tx_table = tx_table.cast(TRANSACTIONS_SCHEMA)
    tx_bounds = np.searchsorted(tx["tx_time_days"].to_numpy(), np.arange(world.settings.days + 1))
    reports = world.fraud_reports
    report_seconds = (
        reports["reported_at"].to_numpy() - np.datetime64(world.start, "us")
    ) // np.timedelta64(1, "s")
    report_table = pa.Table.from_pandas(
        reports[list(FRAUD_REPORTS_SCHEMA.names)], preserve_index=False
    ).cast(FRAUD_REPORTS_SCHEMA)
    report_bounds = np.searchsorted(
        report_seconds.astype(np.int64) // SECONDS_PER_DAY, np.arange(world.settings.days + 1)
    )

    def rows(table: pa.Table, bounds: np.ndarray, offset: int) -> pa.Table:
        return table.slice(int(bounds[offset]), int(bounds[offset + 1] - bounds[offset]))

    _write_days(
        result,
        root,
        first,
        lambda offset: rows(tx_table, tx_bounds, offset),
        lambda offset: rows(report_table, report_bounds, offset),
    )
    written = tx.iloc[tx_bounds[first] : tx_bounds[last + 1]]
    result.transactions = len(written)
    frauds = written[written["tx_fraud"] == 1]
    result.frauds = len(frauds)
    result.frauds_by_scenario = {
        int(k): int(v) for k, v in frauds["tx_fraud_scenario"].value_counts().sort_index().items()
    }
    horizon_end = np.datetime64(world.end + dt.timedelta(days=1), "us")
    result.reports_pending = int((frauds["reported_at"].to_numpy() >= horizon_end).sum())
    return result


def _write_days(
    result: LandingWriteResult,
    root: Path,
    first: int,
    transactions: Callable[[int], pa.Table],
    fraud_reports: Callable[[int], pa.Table],
) -> None:
    """Write both feeds' files of ``result.days`` (day offsets from ``first``), each table made
    by its feed's function of the day offset in the writing thread; record the files and the
    fraud reports written."""
    jobs = [
        (make, offset, feed.file_path(root, day))
        for offset, day in enumerate(result.days, start=first)
        for feed, make in ((TRANSACTIONS, transactions), (FRAUD_REPORTS, fraud_reports))
    ]

    def write(job: tuple[Callable[[int], pa.Table], int, Path]) -> tuple[Path, int]:
        make, offset, path = job
        table = make(offset)
        return _write_atomically(table, path), table.num_rows if make is fraud_reports else 0

    # parquet encoding releases the GIL: write files on all cores
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        written = list(pool.map(write, jobs))
    result.files = [path for path, _ in written]
    result.fraud_reports += sum(reports for _, reports in written)


def simulate_landing(
    settings: SimulationSettings,
    root: Path | str,
    from_day: dt.date | None = None,
    to_day: dt.date | None = None,
) -> LandingWriteResult:
    """Simulate the whole horizon, then write the landing files of ``from_day..to_day``."""
    _day_range(
        settings.start, settings.start + dt.timedelta(days=settings.days - 1), from_day, to_day
    )
    started = time.perf_counter()
    world = simulate(settings)
    simulated = time.perf_counter()
    result = write_landing(world, root, from_day=from_day, to_day=to_day)
    result.simulate_seconds = simulated - started
    result.write_seconds = time.perf_counter() - simulated
    return result


def _day_range(
    start: dt.date, end: dt.date, from_day: dt.date | None, to_day: dt.date | None
) -> tuple[dt.date, dt.date]:
    """The inclusive range of days to write, checked against the horizon ``start..end``."""
    for option, day in (("--from-day", from_day), ("--to-day", to_day)):
        if day is not None and not start <= day <= end:
            raise ConfigError(
                f"{option} {day} is outside the simulated horizon {start}..{end}; "
                "choose a day inside them or change --start/--days"
            )
    from_day = from_day or start
    to_day = to_day or end
    if from_day > to_day:
        raise ConfigError(f"--from-day {from_day} is after --to-day {to_day}; swap them")
    return from_day, to_day


def land_fraud_reports(root: Path | str, reports: pa.Table, source: str) -> list[Path]:
    """Land fraud reports (the contract's columns) as new files, one per report day:
    ``fraud_reports/report_date=D/fraud_reports_D_<source>_<uuid>.parquet``, each written
    atomically. A landed file is immutable and bronze loads each path once, so a feed other than
    the daily file (actuals posted to the Prediction API) lands beside it, never over it."""
    if not re.fullmatch(r"[a-z0-9_]+", source):
        raise ValueError(f"source {source!r}: lowercase letters, digits and _ only")
    table = reports.select(FRAUD_REPORTS_SCHEMA.names).cast(FRAUD_REPORTS_SCHEMA)
    days = table.column("reported_at").to_numpy().astype("datetime64[D]")
    written = []
    for value in np.unique(days):
        day = value.astype(dt.date)
        rows = table.filter(pa.array(days == value))
        name = f"{FRAUD_REPORTS.name}_{day.isoformat()}_{source}_{uuid.uuid4().hex[:12]}.parquet"
        written.append(_write_atomically(rows, FRAUD_REPORTS.partition_dir(root, day) / name))
    return written


def _write_atomically(table: pa.Table, path: Path) -> Path:
    """Write ``table`` to ``path`` via a hidden temporary file in the same folder and a rename."""
    # A leading dot hides the temporary file from readers (pyarrow, Spark) and the .tmp suffix
    # keeps it out of *.parquet globs (DuckDB).
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp, compression="snappy")
        os.replace(tmp, path)
    except OSError as exc:
        raise LandingError(
            f"cannot write landing file {path}: {exc.strerror or exc}; check the landing root"
        ) from None
    finally:
        with contextlib.suppress(OSError):  # gone after the rename, or never created
            tmp.unlink(missing_ok=True)
    return path


def read_landing(
    root: Path | str,
    dataset: LandingDataset | str,
    from_day: dt.date | None = None,
    to_day: dt.date | None = None,
) -> pa.Table:
    """Read a landing dataset back as one table: the file columns plus the partition date.

    Only the contract's columns are read (extra columns are ignored, as the warehouse does).
    """
    import pyarrow.dataset as ds  # slow to import; only readers need it

    dataset = DATASETS[dataset] if isinstance(dataset, str) else dataset
    folder = Path(root) / dataset.name
    if not folder.is_dir():
        raise LandingError(
            f"no landing folder {folder}; run `ml simulate` or land files there first"
        )
    partitioning = ds.partitioning(pa.schema([(dataset.partition_key, pa.date32())]), flavor="hive")
    schema = pa.schema([*dataset.schema, pa.field(dataset.partition_key, pa.date32())])
    try:
        data = ds.dataset(folder, format="parquet", partitioning=partitioning, schema=schema)
        key = ds.field(dataset.partition_key)
        condition = None
        if from_day:
            condition = key >= pa.scalar(from_day, pa.date32())
        if to_day:
            upper = key <= pa.scalar(to_day, pa.date32())
            condition = upper if condition is None else condition & upper
        table = data.to_table(filter=condition)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LandingError(
            f"cannot read landing dataset {folder}: {str(exc).splitlines()[0]}"
        ) from exc
    return table.sort_by([(dataset.partition_key, "ascending"), (dataset.time_column, "ascending")])
