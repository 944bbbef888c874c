"""Reason codes (ml/explain.py): exact, additive contributions for every candidate model, on real
rows of models trained on the generated feature table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from ml.lifecycle import candidates as models
from ml.lifecycle.data import feature_matrix
from ml.lifecycle.explain import REASON_COLUMNS, Explainer, ExplanationError
from ml.platform.settings import EXTRA_FEATURES, FEATURES

FEATURE_LIST = [*FEATURES, *EXTRA_FEATURES]
#: small forests keep the test fast; the method does not depend on the size
OVERRIDES = {"random_forest": {"n_estimators": 20, "n_jobs": 1}}


@pytest.fixture(scope="module")
def split(feature_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    days = pd.to_datetime(feature_frame["tx_date"])
    cut = days.min() + pd.Timedelta(days=30)
    return feature_frame.loc[days < cut], feature_frame.loc[days >= cut]


@pytest.fixture(scope="module")
def fitted(split) -> dict[str, Pipeline]:
    train, _ = split
    x, y = feature_matrix(train, FEATURE_LIST), train["tx_fraud"].to_numpy()
    return {name: models.build_candidate(name, OVERRIDES).fit(x, y) for name in models.CANDIDATES}


def _raw_output(pipeline: Pipeline, x: pd.DataFrame, space: str) -> np.ndarray:
    if space == "log_odds":
        return pipeline.decision_function(x)
    return pipeline.predict_proba(x)[:, 1]


@pytest.mark.parametrize(
    ("candidate", "space"),
    [
        ("logistic_regression", "log_odds"),
        ("hist_gradient_boosting", "log_odds"),
        ("random_forest", "probability"),
    ],
)
def test_contributions_add_up_to_the_models_raw_output(fitted, split, candidate: str, space: str):
    # given a trained candidate and real rows of a later test window
    _, test = split
    x = feature_matrix(test.head(500), FEATURE_LIST)
    pipeline = fitted[candidate]

    # when its contributions are computed
    explanation = Explainer(pipeline, FEATURE_LIST).explain(x)

    # then contributions + base value are the pipeline's own raw output, row by row
    assert explanation.space == space
    assert explanation.contributions.shape == (len(x), len(FEATURE_LIST))
    total = explanation.contributions.sum(axis=1) + explanation.base_value
    np.testing.assert_allclose(total, _raw_output(pipeline, x, space), rtol=0, atol=1e-6)
    # and the contributions are not trivially zero
    assert np.abs(explanation.contributions).max() > 1e-3


def test_logistic_contributions_are_coefficient_times_standardised_value(fitted, split):
    # given the logistic pipeline (StandardScaler + LogisticRegression)
    _, test = split
    pipeline = fitted["logistic_regression"]
    x = feature_matrix(test.head(50), FEATURE_LIST)

    # when explained
    phi = Explainer(pipeline, FEATURE_LIST).explain(x).contributions

    # then each contribution is coef_j * (x_j - mean_j) / scale_j of the scaler
    scaler, model = pipeline.named_steps["scaler"], pipeline.named_steps["model"]
    expected = (x.to_numpy() - scaler.mean_) / scaler.scale_ * model.coef_[0]
    np.testing.assert_allclose(phi, expected, rtol=1e-12, atol=1e-12)


def test_top_reasons_are_the_strongest_contributions_with_original_values(fitted, split):
    # given the boosting model and ten test rows
    _, test = split
    x = feature_matrix(test.head(10), FEATURE_LIST)
    explainer = Explainer(fitted["hist_gradient_boosting"], FEATURE_LIST)

    # when the top 3 reasons are asked
    reasons = explainer.top_reasons(x, k=3)

    # then 3 ranked rows per input row, the largest signed contributions, with unscaled values
    assert list(reasons.columns) == list(REASON_COLUMNS)
    assert (
        len(reasons) == 30
        and reasons.groupby("row")["reason_rank"].apply(list).eq([[1, 2, 3]] * 10).all()
    )
    phi = explainer.explain(x).frame()
    for row, group in reasons.groupby("row"):
        expected = phi.iloc[row].sort_values(ascending=False, kind="stable").head(3)
        assert group["feature"].tolist() == expected.index.tolist()
        np.testing.assert_allclose(group["strength"], expected.to_numpy())
        np.testing.assert_allclose(
            group["feature_value"], [x.iloc[row][f] for f in group["feature"]]
        )
    assert (reasons.groupby("row")["strength"].diff().dropna() <= 0).all()


def test_an_online_call_on_one_row_equals_the_batch_call(fitted, split):
    # given a batch explanation of 200 rows
    _, test = split
    x = feature_matrix(test.head(200), FEATURE_LIST)
    explainer = Explainer(fitted["hist_gradient_boosting"], FEATURE_LIST)
    batch = explainer.explain(x).contributions

    # when row 17 is explained alone, as the online path does
    one = explainer.explain(x.iloc[[17]]).contributions

    # then the same numbers
    np.testing.assert_allclose(one[0], batch[17], rtol=0, atol=1e-12)


def test_an_empty_frame_gives_no_reasons(fitted):
    reasons = Explainer(fitted["logistic_regression"], FEATURE_LIST).top_reasons(
        pd.DataFrame(columns=FEATURE_LIST, dtype="float64")
    )
    assert reasons.empty and list(reasons.columns) == list(REASON_COLUMNS)


def test_models_it_cannot_explain_exactly_are_refused(split):
    # given a pipeline whose preprocessing mixes features, and an unsupported estimator
    train, _ = split
    x, y = feature_matrix(train.head(2000), FEATURE_LIST), train["tx_fraud"].head(2000).to_numpy()
    mixing = Pipeline(
        [
            ("poly", PolynomialFeatures(2)),
            ("scaler", StandardScaler()),
            ("model", DecisionTreeClassifier()),
        ]
    )
    # when / then each is refused with the reason
    with pytest.raises(ExplanationError, match="PolynomialFeatures"):
        Explainer(mixing.fit(x, y), FEATURE_LIST)
    with pytest.raises(ExplanationError, match="DecisionTreeClassifier"):
        Explainer(DecisionTreeClassifier().fit(x, y), FEATURE_LIST)
