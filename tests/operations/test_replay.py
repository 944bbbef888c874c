"""`ml replay` end to end on a tiny world: bootstrap, daily scoring, a scheduled retraining, a
drift alert held back by the cool-down, resumption after an interruption, the CLI.

A replay runs dbt, MLflow and the model lifecycle for real (about a minute each), so the world is
tiny and short (150 customers, labels 2 days late, 12 warm-up days, 3 replayed days) and one
scenario covers everything; tests/test_replay_policies.py tests the decisions in detail.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from support.replay import settings_file as _settings_file
from typer.testing import CliRunner

from ml.cli import app
from ml.operations import replay as rp
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings, load_settings

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
START = dt.date(2018, 4, 13)  # first replayed day; the warm-up is 2018-04-01..04-12
END = dt.date(2018, 4, 15)
DAYS = [START + dt.timedelta(days=i) for i in range((END - START).days + 1)]
BOOTSTRAP_DAY = START - dt.timedelta(days=1)


def _tables(settings: Settings) -> dict[str, pd.DataFrame]:
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        return {
            "predictions": wh.read("scoring.predictions"),
            "events": wh.read("scoring.model_events"),
            "features": wh.read("gold.transaction_features", ["transaction_id", "tx_date"]),
            "bronze": wh.read(
                "bronze.stg_landing__transactions", ["transaction_id", "_source_file"]
            ),
            "bronze_reports": wh.read(
                "bronze.stg_landing__fraud_reports", ["transaction_id", "_source_file"]
            ),
        }


def _events(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    """(business day, event, version) of every event, in the order they were recorded."""
    frame = tables["events"].sort_values("event_at", kind="stable")
    return [
        (pd.Timestamp(d).date().isoformat(), e, str(v))
        for d, e, v in zip(frame["event_date"], frame["event"], frame["model_version"], strict=True)
    ]


def _assert_no_duplicates(tables: dict[str, pd.DataFrame]) -> None:
    assert not tables["predictions"].duplicated(["transaction_id", "model_version"]).any()
    assert tables["events"]["event_id"].is_unique
    assert tables["bronze"]["transaction_id"].is_unique
    assert tables["bronze_reports"]["transaction_id"].is_unique


#: Retrain every 2 days; a drift rule that always holds (PSI >= 0 on tx_amount, 1 day); 2-day cool-down.
POLICIES = {
    "retraining": {
        "every_days": 2,
        "psi_threshold": 0.0,
        "drift_days": 1,
        "drift_features": ["tx_amount"],
        "cooldown_days": 2,
    }
}


def test_replay_decides_logs_and_resumes_after_an_interruption_as_if_uninterrupted(
    replay_root, monkeypatch
):
    # given a world replayed without interruption
    straight = load_settings(_settings_file(replay_root("straight"), **POLICIES))
    result = rp.replay(Runtime.build(straight))
    reference = _tables(straight)

    # then it bootstraps a champion, scores exactly the replayed days, once each
    assert result.bootstrap is not None and [d.day for d in result.days] == DAYS
    predictions = reference["predictions"].merge(reference["features"], on="transaction_id")
    assert sorted({pd.Timestamp(d).date() for d in predictions["tx_date"]}) == DAYS
    in_days = reference["features"]["tx_date"].map(lambda d: pd.Timestamp(d).date()).isin(DAYS)
    assert len(predictions) == int(in_days.sum())
    _assert_no_duplicates(reference)
    # and decides: day 1 logs the drift alert but the bootstrap's cool-down holds the retraining
    # back; day 2 retrains on schedule (the alert joins); day 3 is in the new cool-down, silent
    b, d1, d2, d3 = (day.isoformat() for day in [BOOTSTRAP_DAY, *DAYS])
    assert _events(reference) == [
        (b, "trained", "1"),
        (b, "validated", "1"),
        (b, "promoted", "1"),
        (b, "day_completed", "1"),
        (d1, "scored", "1"),
        (d1, "drift_alert", "1"),
        (d1, "day_completed", "1"),
        (d2, "scored", "1"),
        (d2, "drift_alert", "1"),
        (d2, "trained", "2"),
        (d2, "validated", "2"),
        (d2, "promoted", "2"),
        (d2, "day_completed", "2"),
        (d3, "scored", "2"),
        (d3, "day_completed", "2"),
    ]
    events = reference["events"].sort_values("event_at", kind="stable")
    alerts = events.loc[events["event"] == "drift_alert"]
    assert [json.loads(d)["action"] for d in alerts["details"]] == [
        f"none: cool-down after the retraining of {BOOTSTRAP_DAY} until {DAYS[0]}",
        "retrain",
    ]
    trained = events.loc[events["event"] == "trained", "reason"].tolist()
    assert trained[0].startswith("bootstrap: first champion")
    assert trained[1].startswith(
        "scheduled: 2 days since the last training (every 2); drift_alert: PSI >= 0"
    )
    assert events["run_id"].notna().all()
    assert [d.monitoring_alerts for d in result.days] == [["drift_alert"]] * 3
    assert result.days[2].decisions == [
        f"drift_alert held (none: cool-down after the retraining of {DAYS[1]} until {DAYS[2]})"
    ]
    # and the labels of the first day matured within the replay (2-day delay): its AP is monitored
    assert (
        result.days[2].matured_day == DAYS[0]
        and result.days[2].matured_average_precision is not None
    )

    # when the same world is replayed through the CLI up to the 1st day, then interrupted on the
    # 2nd day while validating the scheduled challenger, then run again to the end
    interrupted_file = _settings_file(replay_root("interrupted"), **POLICIES)
    cli = CliRunner().invoke(
        app, ["replay", "--settings", str(interrupted_file), "--end", DAYS[0].isoformat()]
    )
    assert cli.exit_code == 0, cli.output
    assert f"{BOOTSTRAP_DAY} bootstrap" in cli.output and f"{DAYS[0]} day" in cli.output
    assert "promoted v1" in cli.output and "replayed 1 day(s)" in cli.output
    interrupted = load_settings(interrupted_file)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr("ml.lifecycle.validate.validate", interrupt)
        rp.replay(Runtime.build(interrupted))
    assert _events(_tables(interrupted))[-3:] == [
        (d2, "scored", "1"),
        (d2, "drift_alert", "1"),
        (d2, "trained", "2"),
    ]
    resumed = rp.replay(Runtime.build(interrupted))

    # then the rerun finishes the 2nd day (validates and promotes the recorded challenger) and the
    # 3rd, and the warehouse holds what the uninterrupted run wrote: same predictions (versions
    # and scores), same events, no duplicate anywhere
    assert resumed.resumed_after == DAYS[0] and [d.day for d in resumed.days] == DAYS[1:]
    again = _tables(interrupted)
    _assert_no_duplicates(again)
    assert _events(again) == _events(reference)
    columns = ["transaction_id", "model_version", "score", "is_alert"]
    pd.testing.assert_frame_equal(
        again["predictions"][columns].sort_values(columns[:2], ignore_index=True),
        reference["predictions"][columns].sort_values(columns[:2], ignore_index=True),
    )
    assert len(again["bronze"]) == len(reference["bronze"])
    assert len(again["bronze_reports"]) == len(reference["bronze_reports"])

    # and a replay that is complete does nothing more
    assert rp.replay(Runtime.build(interrupted)).days == []
