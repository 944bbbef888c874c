"""`ml simulate --drift ...` through the CLI (typer's CliRunner)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc
import pytest

from ml.platform.settings import DriftEvent, SimulationSettings
from ml.world.landing import read_landing
from ml.world.simulator import simulate

SIZE = ["--customers", "80", "--terminals", "300", "--days", "12", "--seed", "4"]


def test_drift_options_inject_card_testing_from_the_date(simulate_cli, tmp_path: Path) -> None:
    root = tmp_path / "landing"
    # when card testing of 3 cards a day starts on day 8
    result = simulate_cli(
        *SIZE,
        "--drift",
        "card_testing",
        "--drift-start",
        "2018-04-08",
        "--drift-strength",
        "3",
        "--landing-root",
        str(root),
    )
    # then the summary lists scenario 4 and the drift, with the world's counts
    assert result.exit_code == 0, result.output
    world = simulate(
        SimulationSettings(
            customers=80,
            terminals=300,
            days=12,
            seed=4,
            drift=[DriftEvent(kind="card_testing", start=dt.date(2018, 4, 8), strength=3)],
        )
    )
    card_tests = int((world.transactions["tx_fraud_scenario"] == 4).sum())
    assert card_tests > 0
    assert "scenario 4" in result.output and f"{card_tests:,}" in result.output
    assert "drift card_testing" in result.output and "3 from 2018-04-08 on" in result.output
    # and the landed fraud reports carry scenario 4 only from the drift date on
    reports = read_landing(root, "fraud_reports")
    scenario_4 = reports.filter(pc.equal(reports.column("fraud_scenario"), 4))
    assert scenario_4.num_rows > 0
    transactions = read_landing(root, "transactions")
    assert transactions.num_rows == len(world.transactions)
    tested = world.transactions[world.transactions["tx_fraud_scenario"] == 4]
    assert tested["tx_datetime"].min() >= dt.datetime(2018, 4, 8)


def test_two_kinds_with_an_end_day(simulate_cli, tmp_path: Path) -> None:
    result = simulate_cli(
        *SIZE,
        "--drift",
        "genuine_amount_shift",
        "--drift",
        "genuine_activity_shift",
        "--drift-start",
        "2018-04-05",
        "--drift-end",
        "2018-04-09",
        "--landing-root",
        str(tmp_path / "landing"),
    )
    assert result.exit_code == 0, result.output
    assert "1.5 from 2018-04-05..2018-04-09" in result.output
    assert "drift genuine_amount_shift" in result.output
    assert "drift genuine_activity_shift" in result.output


def test_drift_from_the_settings_file_is_used(simulate_cli, tmp_path: Path) -> None:
    (tmp_path / "fraudops.yaml").write_text(
        "simulation:\n  drift:\n    kind: terminal_compromise_rate\n    start: 2018-04-03\n    strength: 9\n"
    )
    result = simulate_cli(*SIZE, "--landing-root", str(tmp_path / "landing"))
    assert result.exit_code == 0, result.output
    assert (
        "drift terminal_compromise_rate" in result.output
        and "9 from 2018-04-03 on" in result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drift", "card_testing"], "--drift needs --drift-start YYYY-MM-DD"),
        (["--drift-start", "2018-04-05"], "need --drift KIND"),
        (["--drift", "card_testing", "--drift-start", "2018-05-01"], "outside the simulated days"),
        (
            ["--drift", "teleport", "--drift-start", "2018-04-05"],
            "--drift teleport is not a kind of drift; choose one of card_testing",
        ),
        (
            ["--drift", "card_testing", "--drift-start", "2018-04-05", "--drift-strength", "0.5"],
            "whole number",
        ),
    ],
)
def test_drift_user_errors_end_in_one_line(
    simulate_cli, tmp_path: Path, args: list[str], message: str
) -> None:
    result = simulate_cli(*SIZE, *args, "--landing-root", str(tmp_path / "landing"))
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "landing").exists()
