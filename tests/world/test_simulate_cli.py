"""`ml simulate` end to end through the CLI (typer's CliRunner)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ml.platform.settings import SimulationSettings
from ml.world.landing import TRANSACTIONS, read_landing
from ml.world.landing_checks import validate_landing_file
from ml.world.simulator import simulate

SIZE = ["--customers", "60", "--terminals", "300", "--days", "12", "--seed", "4"]


def test_simulate_writes_every_day_and_prints_a_summary(simulate_cli, tmp_path: Path) -> None:
    root = tmp_path / "landing"
    # when
    result = simulate_cli(
        *SIZE, "--start", "2023-01-30", "--label-delay-days", "3", "--landing-root", str(root)
    )
    # then
    assert result.exit_code == 0, result.output
    world = simulate(
        SimulationSettings(
            customers=60, terminals=300, days=12, seed=4, start="2023-01-30", label_delay_days=3
        )
    )
    frauds = int(world.transactions["tx_fraud"].sum())
    for label, value in (
        ("days written", "12 (2023-01-30 .. 2023-02-10)"),
        ("transactions", f"{len(world.transactions):,}"),
        ("frauds", f"{frauds:,}"),
        ("files written", "24"),
        ("landing files under", str(root)),
    ):
        assert label in result.output and value in result.output, (label, value, result.output)
    landed = read_landing(root, "transactions")
    assert landed.num_rows == len(world.transactions)
    assert all(not validate_landing_file(p) for p in root.rglob("*.parquet"))


def test_simulate_writes_a_sub_range_of_days(simulate_cli, tmp_path: Path) -> None:
    root = tmp_path / "landing"
    result = simulate_cli(
        *SIZE, "--from-day", "2018-04-05", "--to-day", "2018-04-06", "--landing-root", str(root)
    )
    assert result.exit_code == 0, result.output
    assert "2 (2018-04-05 .. 2018-04-06)" in result.output
    partitions = sorted(p.name for p in (root / "transactions").iterdir())
    assert partitions == ["tx_date=2018-04-05", "tx_date=2018-04-06"]
    # the same rows as the full world's for that day
    world = simulate(SimulationSettings(customers=60, terminals=300, days=12, seed=4))
    day = world.transactions[world.transactions["tx_time_days"] == 4]
    landed = pq.read_table(TRANSACTIONS.file_path(root, dt.date(2018, 4, 5)))
    assert landed.column("transaction_id").to_pylist() == day["transaction_id"].tolist()


def test_settings_file_values_are_used_and_options_override_them(
    simulate_cli, tmp_path: Path
) -> None:
    # given a project settings file with a landing root and a size
    (tmp_path / "fraudops.yaml").write_text(
        "landing:\n  root: from_file\nsimulation:\n  customers: 30\n  terminals: 300\n  days: 3\n"
    )
    # when only the number of days is overridden
    result = simulate_cli("--days", "2")
    # then the file's root and size are used with the option's days
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "from_file" / "transactions").iterdir()) == [
        "tx_date=2018-04-01",
        "tx_date=2018-04-02",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--to-day", "2018-05-01"],
            "--to-day 2018-05-01 is outside the simulated horizon 2018-04-01..2018-04-12",
        ),
        (["--from-day", "2018-04-03", "--to-day", "2018-04-02"], "swap them"),
        # a --from-day after the last simulated day is outside the horizon (it said "swap them")
        (
            ["--from-day", "2018-05-01"],
            "--from-day 2018-05-01 is outside the simulated horizon 2018-04-01..2018-04-12",
        ),
        # a bad --drift names the option, not the settings file (it said "fix fraudops.yaml")
        (
            ["--drift", "foo", "--drift-start", "2018-04-02"],
            "--drift foo is not a kind of drift; choose one of card_testing",
        ),
        (
            [
                "--drift",
                "genuine_amount_shift",
                "--drift-start",
                "2018-04-02",
                "--drift-strength",
                "20",
            ],
            "invalid option for simulation.drift.0",
        ),
    ],
)
def test_user_errors_end_in_one_line(
    simulate_cli, tmp_path: Path, args: list[str], message: str
) -> None:
    result = simulate_cli(*SIZE, *args, "--landing-root", str(tmp_path / "landing"))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and "fraudops.yaml" not in result.output
    assert "swap them" not in result.output or "--to-day 2018-04-02" in result.output
    assert not (tmp_path / "landing").exists()


def test_dates_have_one_style_and_a_bad_one_is_a_usage_error(simulate_cli, tmp_path: Path) -> None:
    # every date option of every command reads YYYY-MM-DD (typer's DateTime, metavar YYYY-MM-DD)
    result = simulate_cli(
        *SIZE,
        "--from-day",
        "2018-02-30",
        "--landing-root",
        str(tmp_path / "l"),
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "Invalid value for '--from-day'" in result.output
    assert "'2018-02-30' does not match the formats '%Y-%m-%d'" in result.output
