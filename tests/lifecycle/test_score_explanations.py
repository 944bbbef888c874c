"""`ml score` writes the top 3 reasons of every alert to scoring.prediction_explanations, in the
same transaction as the predictions, idempotently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.registry import Reg, add_trained_version
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle import score
from ml.lifecycle.data import feature_matrix
from ml.lifecycle.explain import EXPLANATION_COLUMNS, Explainer
from ml.lifecycle.loaded_model import load_model
from ml.lifecycle.promote import promote
from ml.lifecycle.validate import validate
from ml.platform.runtime import Runtime

EXPLANATIONS = "scoring.prediction_explanations"


def _read(reg: Reg, relation: str) -> pd.DataFrame:
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        return wh.read(relation) if wh.exists(relation) else pd.DataFrame()


@pytest.fixture
def champion(reg: Reg) -> str:
    version = add_trained_version(reg)
    assert validate(reg.rt).passed
    promote(reg.rt)
    return version


def test_every_alert_gets_its_three_strongest_reasons(reg: Reg, champion: str, trained):
    # given a champion and the gold feature table
    frame = trained.frame

    # when `ml score` runs
    result = CliRunner().invoke(app, ["score"])

    # then every alerted transaction has reasons 1, 2, 3 and no other transaction has any
    assert result.exit_code == 0, result.output
    predictions, reasons = _read(reg, "scoring.predictions"), _read(reg, EXPLANATIONS)
    assert list(reasons.columns) == list(EXPLANATION_COLUMNS)
    alerted = set(predictions.loc[predictions["is_alert"], "transaction_id"])
    assert 0 < len(alerted) < len(predictions)
    assert set(reasons["transaction_id"]) == alerted
    assert len(reasons) == 3 * len(alerted)
    assert not reasons.duplicated(["transaction_id", "model_version", "reason_rank"]).any()
    assert set(reasons["reason_rank"]) == {1, 2, 3}
    assert set(reasons["model_version"]) == {champion} and set(reasons["strength_space"]) == {
        "log_odds"
    }
    assert (
        reasons["scored_at"].nunique() == 1
        and reasons["scored_at"].iloc[0] == predictions["scored_at"].iloc[0]
    )
    # and they are the model's own contributions, strongest first, with the feature's value
    model = load_model(reg.name, champion)
    some = reasons.loc[reasons["transaction_id"].isin(sorted(alerted)[:20])]
    rows = frame.set_index("transaction_id").loc[sorted(alerted)[:20]].reset_index()
    phi = Explainer.for_model(model).explain(feature_matrix(rows, model.columns)).frame()
    phi.index = rows["transaction_id"]
    for tx, group in some.groupby("transaction_id"):
        expected = phi.loc[tx].sort_values(ascending=False, kind="stable").head(3)
        assert group.sort_values("reason_rank")["feature"].tolist() == expected.index.tolist()
        np.testing.assert_allclose(
            group.sort_values("reason_rank")["strength"], expected.to_numpy(), atol=1e-9
        )
        values = (
            rows.set_index("transaction_id").loc[tx, group["feature"]].to_numpy(dtype="float64")
        )
        np.testing.assert_allclose(group["feature_value"].to_numpy(), values)


def test_a_rerun_adds_no_reason(reg: Reg, champion: str):
    # given a scored warehouse
    first = score.score(reg.rt)
    # when scoring runs again
    second = score.score(reg.rt)
    # then nothing is added and the reasons are unchanged
    assert first.explanations_added == 3 * first.alerts > 0
    assert second.explanations_added == 0 and second.rows_added == 0
    assert len(_read(reg, EXPLANATIONS)) == first.explanations_added


def test_a_failed_prediction_write_leaves_no_reason(reg: Reg, champion: str):
    # given a scoring.predictions table that cannot take the rows (a column is missing)
    with Runtime.build(reg.settings).warehouse() as wh:
        wh.write(
            pd.DataFrame({"transaction_id": [-1], "model_version": ["0"]}), "scoring.predictions"
        )

    # when scoring fails on that write
    with pytest.raises(Exception, match="score"):
        score.score(reg.rt)

    # then the reasons, written first in the same transaction, were rolled back with it
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        assert not wh.exists(EXPLANATIONS)
        assert wh.scalar("select count(*) from scoring.predictions") == 1
