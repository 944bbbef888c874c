"""``ml shadow import`` (ml/operations/shadow.py) and gold.shadow_comparison_daily: the
incumbent's DataRobot predictions beside our champion's, without touching our rows or the
alert queue. The incumbent is a logistic regression trained on the same days as ours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from ml.cli import app
from ml.operations.shadow import import_shadow_predictions
from ml.platform.errors import ConfigError
from ml.platform.runtime import Runtime
from ml.platform.tables import LATEST_PREDICTIONS, PREDICTIONS

pytestmark = pytest.mark.slow  # a dbt run of the monitoring marts

DEPLOYMENT = "5f0c0ffee0000000000000bb"
INCUMBENT = f"datarobot:{DEPLOYMENT}"


@pytest.fixture(scope="module")
def imported(shadow_world):
    """The CSV imported once by the function, then again by the CLI (nothing more added), and
    the monitoring marts built."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAUDOPS_SETTINGS_FILE", str(shadow_world.root / "fraudops.yaml"))
        rt = Runtime.build(shadow_world.settings)
        first = import_shadow_predictions(rt, shadow_world.csv, deployment=DEPLOYMENT, version="7")
        again = CliRunner().invoke(
            app,
            [
                "shadow",
                "import",
                str(shadow_world.csv),
                "--deployment",
                DEPLOYMENT,
                "--version",
                "7",
            ],
        )
        rt.dbt(
            [
                "run",
                "--select",
                "latest_predictions model_performance_daily shadow_comparison_daily",
            ]
        )
        with rt.warehouse(read_only=True) as wh:
            tables = {
                "predictions": wh.read(PREDICTIONS),
                "latest": wh.read(LATEST_PREDICTIONS),
                "comparison": wh.read("gold.shadow_comparison_daily"),
            }
    return first, again, tables


def test_the_incumbent_is_imported_beside_our_rows_once(shadow_world, imported) -> None:
    first, again, tables = imported
    # then every row of the file was added as the external model, once
    assert (first.model_name, first.model_version) == (INCUMBENT, f"{INCUMBENT}/7")
    assert first.rows_added == first.rows_read == len(shadow_world.frame)
    assert first.unknown_transactions == 0
    assert again.exit_code == 0, again.output
    assert "0 of" in again.output
    predictions = tables["predictions"]
    theirs = predictions.loc[predictions["model_name"] == INCUMBENT].set_index("transaction_id")
    assert len(theirs) == len(shadow_world.frame)
    np.testing.assert_allclose(
        theirs["score"].sort_index(), shadow_world.incumbent_scores.sort_index(), rtol=0, atol=1e-12
    )
    # the file's own labels (THRESHOLD 0.3) are kept
    assert (theirs["is_alert"] == (theirs["score"] >= 0.3)).all()
    # and our rows are untouched
    mine = predictions.loc[predictions["model_name"] == "fraud_detector"]
    pd.testing.assert_frame_equal(
        mine.sort_values("transaction_id").reset_index(drop=True)[["transaction_id", "score"]],
        shadow_world.ours.sort_values("transaction_id").reset_index(drop=True)[
            ["transaction_id", "score"]
        ],
    )


def test_the_alert_queue_ranks_only_our_scores(imported) -> None:
    _, _, tables = imported
    assert set(tables["latest"]["model_name"]) == {"fraud_detector"}


def test_the_comparison_shows_both_models_per_mature_day(shadow_world, imported) -> None:
    _, _, tables = imported
    comparison = tables["comparison"]
    assert len(comparison) > 0
    assert set(comparison["incumbent_model_version"]) == {f"{INCUMBENT}/7"}
    frame = shadow_world.frame.assign(
        theirs=shadow_world.incumbent_scores.loc[shadow_world.frame["transaction_id"]].to_numpy(),
        mine=shadow_world.ours.set_index("transaction_id")
        .loc[shadow_world.frame["transaction_id"], "score"]
        .to_numpy(),
    )
    for row in comparison.itertuples():
        day = frame.loc[pd.to_datetime(frame["tx_date"]) == pd.Timestamp(row.tx_date)]
        if day["tx_fraud"].nunique() == 2:
            expected = average_precision_score(day["tx_fraud"], day["theirs"])
            assert abs(row.incumbent_average_precision - expected) <= 1e-9
            assert (
                abs(row.average_precision - average_precision_score(day["tx_fraud"], day["mine"]))
                <= 1e-9
            )
        theirs, mine = day["theirs"] >= 0.3, day["mine"] >= 0.5
        assert row.n_scored_by_both == len(day)
        assert row.n_alerts_both == int((theirs & mine).sum())
        assert row.n_alerts_incumbent_only == int((theirs & ~mine).sum())
        assert row.n_alerts_ours_only == int((mine & ~theirs).sum())


def test_a_file_without_the_layout_is_refused_in_one_line(shadow_world, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": [1], "p": [0.2]}).to_csv(bad, index=False)
    with pytest.raises(ConfigError, match="lacks column"):
        import_shadow_predictions(
            Runtime.build(shadow_world.settings), bad, deployment=DEPLOYMENT, version="1"
        )
