"""The monitoring marts built by dbt end to end on a tiny simulated world.

simulate -> landing files -> a plain ``dbt build`` (the scoring sources are created empty) ->
``scoring.predictions`` / ``scoring.feature_reference*`` written directly (score = a simple
function of the gold features, reference from ml.reference) -> ``dbt build`` of the monitoring
marts -> results compared with sklearn / scipy on the same rows; then a second model version
is scored and the incremental run adds only its rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ml.lifecycle.metrics import card_precision_at_k
from ml.lifecycle.reference import compute_reference
from ml.platform.dbt import run_dbt
from ml.platform.settings import FEATURES, SimulationSettings
from ml.platform.tables import PREDICTION_COLUMNS, SCORING_SOURCE_COLUMNS
from ml.world.landing import write_landing
from ml.world.simulator import simulate

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = [
    "source:scoring",
    "latest_predictions",
    "fraud_alerts",
    "model_performance_daily",
    "feature_drift_daily",
]
TOP_K = 20
VARS = f"{{alert_top_k: {TOP_K}, card_precision_k: {TOP_K}}}"


def simple_scores(features: pd.DataFrame) -> np.ndarray:
    """A rule a first model might learn: risky terminals and large amounts."""
    raw = 0.7 * features["terminal_id_risk_7day_window"] + 0.3 * (features["tx_amount"] > 220)
    return raw.clip(0, 1).round(3).to_numpy()


def predictions(features: pd.DataFrame, version: str, scored_at: str) -> pd.DataFrame:
    scores = simple_scores(features)
    return pd.DataFrame(
        {
            "transaction_id": features["transaction_id"].astype("int64"),
            "score": scores,
            "is_alert": scores >= 0.3,
            "model_name": "fraud_detector",
            "model_version": version,
            "scored_at": pd.Timestamp(scored_at),
        }
    )


def explanations(scored: pd.DataFrame, version: str, scored_at: str) -> pd.DataFrame:
    """Reasons of the alerted rows of ``predictions(...)``: the rule's two terms, then the night."""
    alerted = scored.loc[scored["is_alert"], "transaction_id"].to_numpy()
    features = ["terminal_id_risk_7day_window", "tx_amount", "tx_during_night"]
    return pd.DataFrame(
        {
            "transaction_id": np.repeat(alerted, 3).astype("int64"),
            "model_name": "fraud_detector",
            "model_version": version,
            "reason_rank": np.tile([1, 2, 3], len(alerted)).astype("int32"),
            "feature": np.tile(features, len(alerted)),
            "feature_value": 1.0,
            "strength": np.tile([0.7, 0.3, 0.0], len(alerted)),
            "strength_space": "probability",
            "scored_at": pd.Timestamp(scored_at),
        }
    )


def append(path: Path, relation: str, frame: pd.DataFrame) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(f"create schema if not exists {relation.split('.')[0]}")
        con.register("_incoming", frame)
        if con.execute(
            "select count(*) from information_schema.tables where table_schema || '.' || table_name = ?",
            [relation],
        ).fetchone()[0]:
            con.execute(f"insert into {relation} by name select * from _incoming")
        else:
            con.execute(f"create table {relation} as select * from _incoming")


def read(path: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).df()


@pytest.mark.slow
def test_monitoring_marts_end_to_end(tmp_path: Path) -> None:
    # given: a 25-day world landed and built into gold
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        "FRAUDOPS_DUCKDB_PATH": str(warehouse),
        "FRAUDOPS_LANDING_ROOT": str(tmp_path / "landing"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    dbt = {"project_dir": REPO_ROOT, "target_path": tmp_path / "target", "env": env}
    world = simulate(SimulationSettings(customers=150, terminals=300, days=25, seed=5))
    write_landing(world, tmp_path / "landing")
    # a plain `dbt build` on the fresh warehouse: the on-run-start hook creates the scoring
    # sources empty (columns from ml/platform/tables.py), so every model and test passes
    fresh = run_dbt(["build"], **dbt)
    assert fresh.run_results is not None
    assert {r["status"] for r in fresh.run_results["results"]} <= {"success", "pass", "no-op"}
    for table, columns in SCORING_SOURCE_COLUMNS.items():
        empty = read(warehouse, f"select * from scoring.{table}")
        assert empty.empty and list(empty.columns) == list(columns), table
    assert list(SCORING_SOURCE_COLUMNS["predictions"]) == list(PREDICTION_COLUMNS)
    gold = read(warehouse, "select * from gold.transaction_features")
    gold["tx_date"] = pd.to_datetime(gold["tx_date"]).dt.date
    first_day, last_day = gold["tx_date"].min(), gold["tx_date"].max()

    # ... version 1 scored every day; its reference is the data of day 10, so that day has no drift;
    # version 2's reference saw amounts 3x higher (a model trained on another population)
    day_10 = gold.loc[gold["tx_date"] == first_day + dt.timedelta(days=10)]
    ref_1 = compute_reference(day_10, FEATURES).for_model("fraud_detector", "1")
    ref_2 = compute_reference(day_10.assign(tx_amount=day_10["tx_amount"] * 3), FEATURES).for_model(
        "fraud_detector", "2"
    )
    scored_1 = predictions(gold, "1", "2018-04-26 01:00:00")
    append(warehouse, "scoring.predictions", scored_1)
    append(warehouse, "scoring.prediction_explanations", explanations(scored_1, "1", "2018-04-26 01:00:00"))
    for bins, sample in (ref_1, ref_2):
        append(warehouse, "scoring.feature_reference", bins)
        append(warehouse, "scoring.feature_reference_sample", sample)

    # when
    result = run_dbt(["build", "-s", *MONITORING, "--vars", VARS], **dbt)

    # then: every model, data test and unit test passed
    assert result.run_results is not None
    statuses = {r["unique_id"]: r["status"] for r in result.run_results["results"]}
    assert all(s in ("success", "pass") for s in statuses.values()), statuses
    assert any("unit_test.fraudops.fraud_alerts" in u for u in statuses)

    # ... the alert queue is each day's top-k by score
    alerts = read(warehouse, "select * from gold.fraud_alerts order by alert_date, alert_rank")
    scored = gold.assign(score=simple_scores(gold))
    expected = scored.sort_values(
        ["tx_date", "score", "transaction_id"], ascending=[True, False, True]
    )
    expected = expected.groupby("tx_date").head(TOP_K)
    assert alerts["transaction_id"].tolist() == expected["transaction_id"].tolist()
    # ... with the reasons of the alerts above the threshold, labelled from the feature_labels seed
    labels = pd.read_csv(REPO_ROOT / "seeds" / "feature_labels.csv").set_index("feature")["label"]
    flagged = alerts.loc[alerts["is_alert"]]
    assert len(flagged) > 0
    assert (flagged["reason_1_label"] == labels["terminal_id_risk_7day_window"]).all()
    assert (flagged["reason_2_feature"] == "tx_amount").all()
    assert (flagged["reason_3_label"] == labels["tx_during_night"]).all()
    assert alerts.loc[~alerts["is_alert"], "reason_1_label"].isna().all()

    # ... performance only on mature days, equal to sklearn on the same rows
    performance = read(warehouse, "select * from gold.model_performance_daily order by tx_date")
    performance["tx_date"] = pd.to_datetime(performance["tx_date"]).dt.date
    assert performance["tx_date"].tolist() == [
        first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days - 7 + 1)
    ]
    for row in performance.itertuples():
        rows = scored.loc[scored["tx_date"] == row.tx_date]
        assert row.n_transactions == len(rows)
        assert row.roc_auc == pytest.approx(
            roc_auc_score(rows["tx_fraud"], rows["score"]), abs=1e-12
        )
        assert row.average_precision == pytest.approx(
            average_precision_score(rows["tx_fraud"], rows["score"]), abs=1e-12
        )
        cp = card_precision_at_k(rows, rows["score"].to_numpy(), TOP_K, remove_detected=False)
        assert row.card_precision_at_k == pytest.approx(cp.mean, abs=1e-12)

    # ... no drift on the reference day for version 1
    drift = read(warehouse, "select * from gold.feature_drift_daily")
    drift["tx_date"] = pd.to_datetime(drift["tx_date"]).dt.date
    assert len(drift) == gold["tx_date"].nunique() * len(FEATURES)
    reference_day = drift.loc[drift["tx_date"] == day_10["tx_date"].iloc[0]]
    assert reference_day["psi"].abs().max() < 1e-12

    # when: version 2 re-scores the last 5 days; the monitoring marts are built again
    recent = gold.loc[gold["tx_date"] > last_day - dt.timedelta(days=5)]
    append(warehouse, "scoring.predictions", predictions(recent, "2", "2018-04-27 01:00:00"))
    run_dbt(["build", "-s", *MONITORING, "--vars", VARS], **dbt)

    # then: the queue ranks version 2's scores on those days; drift gains only version 2's rows,
    # where the amount (trained on x3 amounts) has drifted; version 1's rows are unchanged
    alerts = read(warehouse, "select * from gold.fraud_alerts")
    alerts["alert_date"] = pd.to_datetime(alerts["alert_date"]).dt.date
    assert set(
        alerts.loc[alerts["alert_date"] > last_day - dt.timedelta(days=5), "model_version"]
    ) == {"2"}
    drift_again = read(warehouse, "select * from gold.feature_drift_daily")
    drift_again["tx_date"] = pd.to_datetime(drift_again["tx_date"]).dt.date
    new = drift_again.loc[drift_again["model_version"] == "2"]
    assert len(new) == 5 * len(FEATURES)
    assert new.loc[new["feature"] == "tx_amount", "is_drifted"].all()
    old = drift_again.loc[drift_again["model_version"] == "1"].sort_values(["tx_date", "feature"])
    pd.testing.assert_frame_equal(
        old.reset_index(drop=True), drift.sort_values(["tx_date", "feature"]).reset_index(drop=True)
    )
    # version 2 scored no mature day: performance is unchanged
    assert len(read(warehouse, "select * from gold.model_performance_daily")) == len(performance)
    # and the incremental Python models' staging tables did not stay behind (on-run-end hook)
    leftovers = read(
        warehouse,
        "select table_name from information_schema.tables where table_name like '%dbt_tmp%'",
    )
    assert leftovers.empty, leftovers["table_name"].tolist()
