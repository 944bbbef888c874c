"""Landing files (ml.landing): layout, schema, sub-range and idempotent writes, validation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.platform.errors import ConfigError, LandingError
from ml.platform.settings import SimulationSettings
from ml.world.landing import (
    FRAUD_REPORTS,
    FRAUD_REPORTS_SCHEMA,
    MAX_TX_AMOUNT,
    TRANSACTIONS,
    TRANSACTIONS_SCHEMA,
    read_landing,
    write_landing,
)
from ml.world.landing_checks import validate_landing_file
from ml.world.simulator import SimulatedWorld, simulate

SMALL = SimulationSettings(customers=200, terminals=400, days=40, seed=5, label_delay_days=7)
START = SMALL.start


def _day(offset: int) -> dt.date:
    return START + dt.timedelta(days=offset)


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def full_root(world: SimulatedWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    write_landing(world, root)
    return root


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_full_write_lays_out_one_file_per_day_and_dataset(full_root: Path) -> None:
    files = _files(full_root)
    expected = sorted(
        [TRANSACTIONS.file_path(Path(), _day(i)) for i in range(SMALL.days)]
        + [FRAUD_REPORTS.file_path(Path(), _day(i)) for i in range(SMALL.days)]
    )
    assert files == expected
    assert str(files[0]) == "fraud_reports/report_date=2018-04-01/fraud_reports_2018-04-01.parquet"
    assert (
        str(expected[SMALL.days])
        == "transactions/tx_date=2018-04-01/transactions_2018-04-01.parquet"
    )


def test_every_file_has_the_contract_schema_and_no_problem(full_root: Path) -> None:
    for relative in _files(full_root):
        path = full_root / relative
        schema = pq.read_schema(path)
        expected = (
            TRANSACTIONS_SCHEMA if relative.parts[0] == "transactions" else FRAUD_REPORTS_SCHEMA
        )
        assert schema.equals(expected, check_metadata=False), relative
        assert validate_landing_file(path) == [], relative


def test_transactions_land_without_labels_and_read_back_whole(
    world: SimulatedWorld, full_root: Path
) -> None:
    table = read_landing(full_root, "transactions")
    assert "tx_fraud" not in table.column_names and "tx_fraud_scenario" not in table.column_names
    landed = table.to_pandas()
    expected = world.transactions[list(TRANSACTIONS_SCHEMA.names)]
    pd.testing.assert_frame_equal(
        landed[list(TRANSACTIONS_SCHEMA.names)], expected, check_dtype=False
    )
    # the partition is the day of the transaction
    assert (pd.to_datetime(landed["tx_date"]) == landed["tx_datetime"].dt.normalize()).all()


def test_reports_land_on_their_report_day_within_the_delay(
    world: SimulatedWorld, full_root: Path
) -> None:
    reports = read_landing(full_root, "fraud_reports").to_pandas()
    tx = world.transactions.drop(columns="reported_at").set_index("transaction_id")
    joined = reports.join(tx, on="transaction_id")
    # every report is a fraud of the world, with its scenario
    assert (joined["tx_fraud"] == 1).all()
    assert (joined["fraud_scenario"] == joined["tx_fraud_scenario"]).all()
    expected_at = world.transactions.set_index("transaction_id").loc[
        reports["transaction_id"], "reported_at"
    ]
    assert (reports["reported_at"].to_numpy() == expected_at.to_numpy()).all()
    assert reports["transaction_id"].is_unique
    # reported on the day of its partition, never before the transaction, at most the delay after
    assert (pd.to_datetime(reports["report_date"]) == reports["reported_at"].dt.normalize()).all()
    delay = joined["reported_at"] - joined["tx_datetime"]
    assert (delay >= pd.Timedelta(0)).all()
    assert (delay <= pd.Timedelta(days=SMALL.label_delay_days)).all()
    # reports dated after the horizon have not arrived; all others have
    horizon_end = pd.Timestamp(world.end + dt.timedelta(days=1))
    arrived = world.fraud_reports[world.fraud_reports["reported_at"] < horizon_end]
    assert len(arrived) < len(world.fraud_reports)
    assert sorted(reports["transaction_id"]) == sorted(arrived["transaction_id"])


def test_sub_range_writes_only_those_days_with_the_same_rows(
    world: SimulatedWorld, full_root: Path, tmp_path: Path
) -> None:
    # when days 10..12 are written to an empty landing zone
    result = write_landing(world, tmp_path, from_day=_day(10), to_day=_day(12))
    # then only their six files exist, identical to the full write's
    assert result.days == [_day(10), _day(11), _day(12)]
    written = _files(tmp_path)
    assert len(written) == 6
    assert {p.parent.name.split("=")[1] for p in written} == {str(_day(i)) for i in (10, 11, 12)}
    for relative in written:
        assert pq.read_table(tmp_path / relative).equals(pq.read_table(full_root / relative))
    assert result.transactions == sum(
        pq.read_metadata(tmp_path / p).num_rows for p in written if p.parts[0] == "transactions"
    )


def test_rewriting_a_day_replaces_its_file_atomically(
    world: SimulatedWorld, tmp_path: Path
) -> None:
    # given a landed day whose file got damaged
    write_landing(world, tmp_path, from_day=_day(3), to_day=_day(3))
    path = TRANSACTIONS.file_path(tmp_path, _day(3))
    original = pq.read_table(path)
    path.write_bytes(b"not parquet")
    assert validate_landing_file(path)
    # when the day is written again
    write_landing(world, tmp_path, from_day=_day(3), to_day=_day(3))
    # then the file is whole again, still one per partition, and no temporary file is left
    assert pq.read_table(path).equals(original)
    assert len(_files(tmp_path)) == 2
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_day_without_rows_still_gets_an_empty_file(tmp_path: Path) -> None:
    # given a world where no customer has a terminal nearby, so no transaction at all
    empty = simulate(SimulationSettings(customers=5, terminals=5, days=2, radius=0.001))
    assert empty.transactions.empty
    write_landing(empty, tmp_path)
    for dataset in (TRANSACTIONS, FRAUD_REPORTS):
        for offset in range(2):
            path = dataset.file_path(tmp_path, _day(offset))
            assert pq.read_metadata(path).num_rows == 0
            assert pq.read_schema(path).equals(dataset.schema, check_metadata=False)
            assert validate_landing_file(path) == []


def test_days_outside_the_horizon_are_refused(world: SimulatedWorld, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outside the simulated horizon"):
        write_landing(world, tmp_path, from_day=_day(-1))
    with pytest.raises(ConfigError, match="outside the simulated horizon"):
        write_landing(world, tmp_path, to_day=_day(SMALL.days))
    with pytest.raises(ConfigError, match="swap them"):
        write_landing(world, tmp_path, from_day=_day(5), to_day=_day(4))
    assert _files(tmp_path) == []


def test_read_landing_ignores_temporary_files_and_filters_days(
    full_root: Path, tmp_path: Path
) -> None:
    # given an in-flight temporary file next to a landed one
    source = TRANSACTIONS.file_path(full_root, _day(0))
    target = TRANSACTIONS.file_path(tmp_path, _day(0))
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    (target.parent / f".{target.name}.0123.tmp").write_bytes(b"partial")
    # then reading sees the landed file only
    assert read_landing(tmp_path, TRANSACTIONS).num_rows == pq.read_metadata(source).num_rows
    # and a day filter keeps only those partitions
    days = read_landing(full_root, "transactions", from_day=_day(2), to_day=_day(3)).column(
        "tx_date"
    )
    assert set(days.to_pylist()) == {_day(2), _day(3)}
    with pytest.raises(LandingError, match="no landing folder"):
        read_landing(tmp_path, FRAUD_REPORTS)


# --- validate_landing_file: one bad file per rule -----------------------------------------------------


def _write(root: Path, dataset_dir: str, partition: str, name: str, table: pa.Table) -> Path:
    path = root / dataset_dir / partition / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _transactions(**overrides: list) -> pa.Table:
    columns = {
        "transaction_id": [1, 2],
        "tx_datetime": [dt.datetime(2018, 4, 1, 10), dt.datetime(2018, 4, 1, 11)],
        "customer_id": [10, 11],
        "terminal_id": [20, 21],
        "tx_amount": [12.5, 40.0],
    }
    columns.update(overrides)
    fields = {f.name: f.type for f in TRANSACTIONS_SCHEMA}
    return pa.table({k: pa.array(v, type=fields.get(k)) for k, v in columns.items()})


def _tx_path(
    tmp_path: Path, table: pa.Table, name: str = "transactions_2018-04-01.parquet"
) -> Path:
    return _write(tmp_path, "transactions", "tx_date=2018-04-01", name, table)


def test_a_valid_hand_made_file_has_no_problem(tmp_path: Path) -> None:
    assert validate_landing_file(_tx_path(tmp_path, _transactions())) == []
    # extra columns are ignored
    extra = _transactions().append_column("channel", pa.array(["pos", "web"]))
    assert validate_landing_file(_tx_path(tmp_path, extra)) == []


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (_transactions().drop_columns(["terminal_id"]), "missing column terminal_id"),
        (
            _transactions().set_column(4, "tx_amount", pa.array(["1", "2"])),
            "column tx_amount is string",
        ),
        (_transactions(customer_id=[10, None]), "1 row(s) with null customer_id"),
        (_transactions(tx_amount=[-0.01, MAX_TX_AMOUNT + 1]), "2 row(s) with tx_amount outside"),
        (
            _transactions(tx_datetime=[dt.datetime(2018, 4, 1, 23, 59), dt.datetime(2018, 4, 2)]),
            "1 row(s) with tx_datetime after the end of partition day 2018-04-01",
        ),
        (_transactions(transaction_id=[1, 1]), "1 transaction_id(s) with more than one content"),
        (
            _transactions(
                transaction_id=[1, 1],
                tx_amount=[5.0, 5.0],
                customer_id=[1, 1],
                terminal_id=[2, 2],
                tx_datetime=[dt.datetime(2018, 4, 1)] * 2,
            ),
            "1 exact duplicate row(s)",
        ),
        (
            _transactions().append_column("tx_date", pa.array(["2018-04-01"] * 2)),
            "column tx_date repeats the partition key",
        ),
    ],
)
def test_each_rule_is_reported(tmp_path: Path, table: pa.Table, problem: str) -> None:
    problems = validate_landing_file(_tx_path(tmp_path, table))
    assert len(problems) == 1 and problem in problems[0], problems


def test_layout_and_format_problems_are_reported(tmp_path: Path) -> None:
    good = _transactions()
    wrong_key = _write(
        tmp_path, "transactions", "date=2018-04-01", "transactions_2018-04-01.parquet", good
    )
    assert any("is not tx_date=YYYY-MM-DD" in p for p in validate_landing_file(wrong_key))
    no_date = _tx_path(tmp_path, good, name="part-0.parquet")
    assert any("does not contain the partition date" in p for p in validate_landing_file(no_date))
    unknown = _write(
        tmp_path, "payments", "tx_date=2018-04-01", "payments_2018-04-01.parquet", good
    )
    assert any("not under a dataset folder" in p for p in validate_landing_file(unknown))
    csv = tmp_path / "transactions" / "tx_date=2018-04-02" / "transactions_2018-04-02.parquet"
    csv.parent.mkdir(parents=True)
    csv.write_text("transaction_id,tx_amount\n1,2.0\n")
    assert any("not a readable parquet file" in p for p in validate_landing_file(csv))


def test_a_report_after_its_day_is_reported(tmp_path: Path) -> None:
    reports = pa.table(
        {
            "transaction_id": pa.array([1], pa.int64()),
            "reported_at": pa.array([dt.datetime(2018, 4, 3, 0, 0, 1)], pa.timestamp("us")),
            "fraud_scenario": pa.array([2], pa.int32()),
        }
    )
    path = _write(
        tmp_path,
        "fraud_reports",
        "report_date=2018-04-02",
        "fraud_reports_2018-04-02.parquet",
        reports,
    )
    assert validate_landing_file(path) == [
        f"{path}: 1 row(s) with reported_at after the end of partition day 2018-04-02"
    ]


def test_an_unwritable_landing_root_is_one_clear_error(
    world: SimulatedWorld, tmp_path: Path
) -> None:
    # given a landing root that is a file, not a folder
    root = tmp_path / "landing"
    root.write_text("oops")
    # then writing fails with a LandingError naming the file it could not write
    with pytest.raises(
        LandingError, match="cannot write landing file .*transactions_2018-04-01.parquet"
    ):
        write_landing(world, root, from_day=_day(0), to_day=_day(0))
