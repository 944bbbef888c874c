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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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

_PARTITION_DIR = re.compile(r"^(?P<key>[a-z_]+)=(?P<day>\d{4}-\d{2}-\d{2})$")


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

    jobs = []
    for offset, day in zip(range(first, last + 1), result.days, strict=True):
        jobs.append((transactions, offset, TRANSACTIONS.file_path(root, day)))
        jobs.append((fraud_reports, offset, FRAUD_REPORTS.file_path(root, day)))
        result.fraud_reports += int(report_bounds[offset + 1] - report_bounds[offset])
    # parquet encoding releases the GIL: write files on all cores
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        result.files = list(pool.map(lambda job: _write_atomically(job[0](job[1]), job[2]), jobs))

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

    jobs = []
    for offset, day in zip(range(first, last + 1), result.days, strict=True):
        day_reports = rows(report_table, report_bounds, offset)
        jobs.append((rows(tx_table, tx_bounds, offset), TRANSACTIONS.file_path(root, day)))
        jobs.append((day_reports, FRAUD_REPORTS.file_path(root, day)))
        result.fraud_reports += day_reports.num_rows
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        result.files = list(pool.map(lambda job: _write_atomically(*job), jobs))
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


def parse_day(value: str | None, option: str = "day") -> dt.date | None:
    """Parse an ISO date given on the command line (None stays None)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


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
    match = _PARTITION_DIR.match(path.parent.name)
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
