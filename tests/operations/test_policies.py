"""`ml replay` without dbt: retraining policies, the event log, the replay plan, CLI errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from support.common import settings_for
from typer.testing import CliRunner

from ml.cli import app
from ml.operations import daily
from ml.operations import events as ev
from ml.operations import policies as pol
from ml.operations import replay as rp
from ml.platform.errors import ConfigError
from ml.platform.runtime import Runtime

DAY = dt.date(2018, 5, 10)


def _drift(rows: list[tuple[dt.date, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["tx_date", "feature", "psi"])


def _days_back(n: int) -> list[dt.date]:
    return [DAY - dt.timedelta(days=i) for i in range(n)]


# --- drift trigger -------------------------------------------------------------------------------


def test_drift_alert_needs_every_day_of_the_streak_drifted():
    # given tx_amount drifted on the last 3 days, another feature only today
    drift = _drift([(d, "tx_amount", 0.4) for d in _days_back(3)] + [(DAY, "tx_during_night", 0.9)])

    # when the rule asks for 3 days of at least one watched feature above 0.25
    alert = pol.drift_alert(
        drift, DAY, psi_threshold=0.25, days=3, min_features=1, features=["tx_amount"]
    )

    # then it fires, naming the feature, its worst PSI and the days
    assert alert is not None and alert.event == "drift_alert"
    assert "tx_amount 0.40" in alert.reason and "2018-05-08..2018-05-10" in alert.reason
    assert alert.details["days"] == ["2018-05-08", "2018-05-09", "2018-05-10"]
    # and not for 4 days (the 4th day back has no row: the streak is broken)
    assert (
        pol.drift_alert(
            drift, DAY, psi_threshold=0.25, days=4, min_features=1, features=["tx_amount"]
        )
        is None
    )


@pytest.mark.parametrize(
    ("features", "min_features", "threshold", "fires"),
    [
        (["tx_during_night"], 1, 0.25, False),  # drifted only today
        (["tx_amount", "tx_during_night"], 2, 0.25, False),  # two features on one day only
        (["tx_amount"], 1, 0.5, False),  # below a higher threshold
        (["tx_amount"], 1, None, False),  # trigger off
        (["tx_amount"], 1, 0.0, True),  # PSI >= 0 always holds
    ],
)
def test_drift_alert_counts_only_watched_features_above_the_threshold(
    features, min_features, threshold, fires
):
    # given tx_amount at 0.4 on the last 2 days and tx_during_night at 0.9 today only
    drift = _drift([(d, "tx_amount", 0.4) for d in _days_back(2)] + [(DAY, "tx_during_night", 0.9)])

    # when the rule watches `features` over 2 days
    alert = pol.drift_alert(
        drift, DAY, psi_threshold=threshold, days=2, min_features=min_features, features=features
    )

    # then it fires only when each day has enough watched features at or above the threshold
    assert (alert is not None) is fires


# --- performance trigger -------------------------------------------------------------------------


def _performance(values: list[float | None]) -> pd.DataFrame:
    days = sorted(_days_back(len(values)))
    return pd.DataFrame({"tx_date": days, "average_precision": values})


def test_performance_alert_fires_when_the_last_matured_days_are_all_below_the_floor():
    # given the champion's matured AP: good, then 3 bad days (one day without frauds in between)
    performance = _performance([0.8, 0.3, None, 0.2, 0.25])

    # when the floor is 0.5 over 3 days
    alert = pol.performance_alert(performance, min_average_precision=0.5, days=3)

    # then it fires on the 3 latest days that have an AP (the null day is skipped)
    assert alert is not None and alert.event == "performance_alert"
    assert alert.details["average_precision"] == [0.3, 0.2, 0.25]
    # and not over 4 days (0.8 is above the floor), nor with the trigger off, nor without history
    assert pol.performance_alert(performance, min_average_precision=0.5, days=4) is None
    assert pol.performance_alert(performance, min_average_precision=None, days=1) is None
    assert pol.performance_alert(performance.iloc[:0], min_average_precision=0.5, days=1) is None


def test_an_impossible_floor_always_alerts():
    # given any AP, when the floor is above 1, then one matured day is enough to alert
    assert (
        pol.performance_alert(_performance([0.99]), min_average_precision=1.01, days=1) is not None
    )


# --- schedule and cool-down ------------------------------------------------------------------------


def test_schedule_and_cooldown_count_days_since_the_last_training():
    last = dt.date(2018, 5, 1)
    # a weekly schedule is due 7 days after the last training, not before; never when off
    assert not pol.scheduled_due(dt.date(2018, 5, 7), last, 7)
    assert pol.scheduled_due(dt.date(2018, 5, 8), last, 7)
    assert not pol.scheduled_due(dt.date(2018, 6, 8), last, 0)
    assert pol.scheduled_due(dt.date(2018, 5, 2), None, 7)
    # a 3-day cool-down covers the training day and the 2 next days
    assert pol.cooldown_until(last, 3) == dt.date(2018, 5, 3)
    assert pol.cooldown_until(last, 0) is None and pol.cooldown_until(None, 3) is None


# --- the event log ----------------------------------------------------------------------------------


def test_events_are_written_once_with_the_report_columns(tmp_path: Path, warehouse_env: Path):
    # given two events of a day
    settings = settings_for(tmp_path)
    day_events = [
        ev.ModelEvent(
            DAY, "scored", "fraud_detector", "3", "scored 10", {"rows": 10, "day": DAY}, "run1"
        ),
        ev.ModelEvent(
            DAY,
            "drift_alert",
            "fraud_detector",
            "3",
            "PSI",
            {"max_psi": {"tx_amount": float("nan")}},
        ),
    ]

    # when they are recorded twice (a resumed replay)
    with Runtime.build(settings).warehouse() as wh:
        added = [ev.record(wh, day_events), ev.record(wh, day_events)]
        types = dict(
            wh.con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'scoring' and table_name = 'model_events'"
            ).fetchall()
        )
        back = ev.read_events(wh, "fraud_detector")

    # then the second write adds nothing, and the table has the columns ml report reads
    assert added == [2, 0]
    assert types == {
        "event_id": "VARCHAR",
        "event_at": "TIMESTAMP",
        "event_date": "DATE",
        "event": "VARCHAR",
        "model_name": "VARCHAR",
        "model_version": "VARCHAR",
        "reason": "VARCHAR",
        "details": "VARCHAR",
        "run_id": "VARCHAR",
    }
    assert list(back["event"]) == ["scored", "drift_alert"]
    assert back["event_date"].tolist() == [DAY, DAY]
    assert back["details"][0] == {"rows": 10, "day": "2018-05-10"}
    assert back["details"][1] == {"max_psi": {"tx_amount": None}}  # NaN is stored as JSON null
    assert back["run_id"].isna().tolist() == [False, True]


def test_an_unknown_event_kind_is_refused():
    with pytest.raises(ValueError, match="unknown event"):
        ev.ModelEvent(DAY, "retrained", "fraud_detector")


def test_event_details_are_json():
    row = ev.ModelEvent(DAY, "trained", "m", "2", "why", {"windows": {"test_end": DAY}}).row()
    assert row["event_id"] == "m/2018-05-10/trained"
    assert json.loads(row["details"]) == {"windows": {"test_end": "2018-05-10"}}


# --- plan --------------------------------------------------------------------------------------------


def test_the_default_plan_replays_after_the_warm_up_to_the_end(tmp_path: Path):
    settings = settings_for(tmp_path, simulation={"days": 100}, replay={"warmup_days": 60})
    plan = rp.plan(settings)
    assert (plan.warmup_start, plan.start, plan.end) == (
        dt.date(2018, 4, 1),
        dt.date(2018, 5, 31),
        dt.date(2018, 7, 9),
    )


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (dt.date(2018, 5, 1), None, "warm-up days before 2018-05-01 begin on 2018-03-02"),
        (dt.date(2018, 7, 1), dt.date(2018, 6, 1), "must lie inside the simulated days"),
        (None, dt.date(2019, 1, 1), "must lie inside the simulated days"),
    ],
)
def test_a_plan_outside_the_simulation_is_one_config_error(tmp_path: Path, start, end, message):
    settings = settings_for(tmp_path, simulation={"days": 100}, replay={"warmup_days": 60})
    with pytest.raises(ConfigError, match=message):
        rp.plan(settings, start, end)


def test_the_world_fingerprint_changes_with_the_drift(tmp_path: Path):
    plain = settings_for(tmp_path)
    drifted = settings_for(
        tmp_path, simulation={"drift": {"kind": "genuine_amount_shift", "start": "2018-06-01"}}
    )
    assert rp.world_fingerprint(plain) == rp.world_fingerprint(settings_for(tmp_path))
    assert rp.world_fingerprint(plain) != rp.world_fingerprint(drifted)


def test_cli_reports_a_bad_replay_range_in_one_line(warehouse_env: Path):
    # given the default settings, when the replay range is outside the simulation
    result = CliRunner().invoke(app, ["replay", "--start", "2030-01-01"])

    # then one line says so, without a traceback
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "error: replay days 2030-01-01" in result.output


def test_cli_reports_a_missing_settings_file_in_one_line(tmp_path: Path, warehouse_env: Path):
    result = CliRunner().invoke(app, ["replay", "--settings", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "settings file not found" in result.output and "Traceback" not in result.output


def test_drift_features_must_be_model_features(tmp_path: Path):
    with pytest.raises(ConfigError, match="retraining.drift_features"):
        settings_for(tmp_path, retraining={"drift_features": ["tx_colour"]})


# --- the daily decisions (Replayer.policies) without dbt, MLflow or a warehouse ------------------------


class _Decisions(daily.Operator):
    """A replayer whose monitoring answers are given, whose events stay in memory and whose
    retraining only records that it happened (and a `trained` event, as the real one does)."""

    def __init__(self, settings, holding: dict[dt.date, list[str]]):
        super().__init__(Runtime.build(settings))
        self.holding = holding
        self.retrained: list[tuple[dt.date, list[str]]] = []
        self.record(ev.ModelEvent(BOOT, "trained", self.name, "1", "bootstrap"))

    def record(self, *events: ev.ModelEvent) -> None:
        rows = ev.events_frame(events)
        rows["details"] = [json.loads(d) for d in rows["details"]]
        rows = rows.loc[~rows["event_id"].isin(self.log.events["event_id"])]
        self.log.events = (
            pd.concat([self.log.events, rows], ignore_index=True) if len(self.log.events) else rows
        )

    def monitor(self, day, version, report):
        return [pol.Alert(kind, f"{kind} holds", {}) for kind in self.holding.get(day, [])]

    def retrain(self, day, triggers, report):
        self.retrained.append((day, triggers))
        self.record(ev.ModelEvent(day, "trained", self.name, "2", "; ".join(triggers)))

    def champion_version(self):
        return "1"

    def run(self, days: int) -> None:
        for i in range(1, days + 1):
            report = daily.DayReport(day=BOOT + dt.timedelta(days=i), phase="day", scored_by="1")
            self.policies(report.day, report)
            self.complete(report)

    def alerts(self) -> list[tuple[int, str, str]]:
        rows = self.log.events.loc[self.log.events["event"].isin(daily.ALERT_EVENTS)]
        return [
            ((d - BOOT).days, e, details["action"].split(":")[0])
            for d, e, details in zip(
                rows["event_date"], rows["event"], rows["details"], strict=True
            )
        ]


BOOT = dt.date(2018, 5, 1)


def _day(i: int) -> dt.date:
    return BOOT + dt.timedelta(days=i)


def test_an_alert_retrains_only_outside_the_cool_down_and_is_logged_once_per_episode(
    tmp_path: Path,
):
    # given no schedule, a 3-day cool-down after the bootstrap's training, and an alert that holds every day
    settings = settings_for(tmp_path, retraining={"every_days": 0, "cooldown_days": 3})
    replayer = _Decisions(settings, {_day(i): ["drift_alert"] for i in range(1, 8)})

    # when 7 days are decided
    replayer.run(7)

    # then it retrains once the cool-down is over (day 3), and again 3 days later (day 6)
    assert [d for d, _ in replayer.retrained] == [_day(3), _day(6)]
    assert replayer.retrained[0][1] == ["drift_alert: drift_alert holds"]
    # and logs the alert when it starts holding (held back by the cool-down) and when it retrains
    assert replayer.alerts() == [
        (1, "drift_alert", "none"),
        (3, "drift_alert", "retrain"),
        (6, "drift_alert", "retrain"),
    ]


def test_an_alert_that_stops_and_holds_again_in_a_cool_down_is_logged_again(tmp_path: Path):
    settings = settings_for(tmp_path, retraining={"every_days": 0, "cooldown_days": 10})
    replayer = _Decisions(
        settings, {_day(1): ["performance_alert"], _day(3): ["performance_alert"]}
    )
    replayer.run(4)
    assert replayer.retrained == []
    assert replayer.alerts() == [(1, "performance_alert", "none"), (3, "performance_alert", "none")]


def test_the_schedule_retrains_even_in_a_cool_down_and_takes_the_alerts_along(tmp_path: Path):
    # given a retraining every 2 days, a long cool-down and a drift alert from day 1 on
    settings = settings_for(tmp_path, retraining={"every_days": 2, "cooldown_days": 5})
    replayer = _Decisions(settings, {_day(i): ["drift_alert"] for i in range(1, 5)})

    # when 4 days are decided
    replayer.run(4)

    # then the schedule retrains on days 2 and 4, with the alert as a second trigger
    assert [d for d, _ in replayer.retrained] == [_day(2), _day(4)]
    assert replayer.retrained[0][1] == [
        "scheduled: 2 days since the last training (every 2)",
        "drift_alert: drift_alert holds",
    ]
    assert replayer.alerts() == [
        (1, "drift_alert", "none"),
        (2, "drift_alert", "retrain"),
        (4, "drift_alert", "retrain"),
    ]


def test_no_schedule_and_no_alert_means_no_retraining(tmp_path: Path):
    settings = settings_for(tmp_path, retraining={"every_days": 0})
    replayer = _Decisions(settings, {})
    replayer.run(10)
    assert replayer.retrained == [] and replayer.alerts() == []
