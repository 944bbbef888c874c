"""`ml operate`: one business day on real data. The gate (late feeds, no champion) and the
no-op of a completed day need no dbt; one slow test operates a real day after a replay (the
same ``Operator.run_day`` the replay runs per day) and reruns it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from support.replay import END, START, settings_file
from typer.testing import CliRunner

from ml.cli import app
from ml.operations import events as ev
from ml.operations import replay as rp
from ml.operations.operate import LateDataError, operate
from ml.platform.errors import ModelRegistryError
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.world.landing import write_landing
from ml.world.simulator import simulate

DAY = dt.date(2018, 4, 5)


@pytest.fixture
def landed(replay_root, tmp_path: Path):
    """A tiny world's files up to DAY landed; returns (settings file, runtime)."""
    root = replay_root("operate")
    path = settings_file(root)
    settings = load_settings(path)
    write_landing(
        simulate(settings.simulation), settings.landing.root, settings.simulation.start, DAY
    )
    return path, Runtime.build(settings)


def test_a_late_feed_stops_the_day_with_one_line_naming_it(landed) -> None:
    path, rt = landed
    # given the fraud reports of DAY did not arrive
    shutil.rmtree(Path(rt.settings.landing.root) / "fraud_reports" / f"report_date={DAY}")
    # when the day is operated, then it stops before anything runs, naming the feed and the day
    with pytest.raises(LateDataError, match=f"the fraud_reports feed has not delivered {DAY}"):
        operate(rt, DAY)
    # and on the command line: one line, exit code 3
    result = CliRunner().invoke(app, ["operate", "--day", str(DAY), "--settings", str(path)])
    assert result.exit_code == 3
    assert "fraud_reports feed has not delivered 2018-04-05" in result.output
    assert "--allow-late" in result.output and "Traceback" not in result.output
    # a day nothing landed for is late too
    with pytest.raises(LateDataError, match="the transactions feed has not delivered 2018-04-06"):
        operate(rt, DAY + dt.timedelta(days=1))


def test_without_a_champion_operate_says_how_to_get_one(landed) -> None:
    _, rt = landed
    with pytest.raises(ModelRegistryError, match=r"no champion .* \(ml run, or ml train"):
        operate(rt, DAY, report_path=None)


def test_a_completed_day_is_not_operated_again(landed) -> None:
    _, rt = landed
    # given DAY completed (its event), and its files gone since
    with rt.warehouse() as wh:
        ev.record(wh, [ev.ModelEvent(DAY, "day_completed", rt.model_name, "1", "done", {})])
    shutil.rmtree(Path(rt.settings.landing.root) / "fraud_reports" / f"report_date={DAY}")
    # when it is operated again, then nothing happens (no gate, no dbt, no MLflow)
    result = operate(rt, DAY)
    assert result.already_done and result.report is None
    # and without --day, the next day is the one after the last operated day
    with pytest.raises(LateDataError, match="2018-04-06"):
        operate(rt)


@pytest.mark.slow
def test_operate_runs_the_replays_day_on_real_files_and_a_rerun_does_nothing(
    replay_root,
) -> None:
    # given a replay up to the day before END (bootstrap + days), and END's files landed as a
    # bank would deliver them (same world)
    root = replay_root("operate-real")
    settings = load_settings(
        settings_file(root, replay={"end": (END - dt.timedelta(days=1)).isoformat()})
    )
    rt = Runtime.build(settings)
    rp.replay(rt)
    write_landing(simulate(settings.simulation), settings.landing.root, END, END)
    report_path = root / "report.html"

    # when END is operated
    result = operate(rt, report_path=report_path)

    # then every step ran for END (the day after the last operated one): built, scored, monitored,
    # the day completed, its report written and logged to the day's MLflow run
    assert result.day == END and not result.already_done
    day = result.report
    assert set(day.seconds) >= {"dbt_medallion", "score", "dbt_downstream", "report", "total"}
    assert day.scored > 0 and day.scored_by is not None
    assert report_path.is_file()
    client = rt.registry()
    artifacts = [a.path for a in client.list_artifacts(day.run_id, "reports")]
    assert artifacts == ["reports/report.html"]
    log = ev.EventLog(rt)
    log.load()
    assert {"scored", "day_completed"} <= set(log.day_events(END))
    assert log.completed()[0] == END

    # and a rerun does nothing
    again = operate(rt, END, report_path=report_path)
    assert again.already_done
    assert START < END
