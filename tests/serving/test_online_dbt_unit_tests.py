"""The dbt unit tests of gold.transaction_features (models/marts/fraud/_fraud__models.yml),
run through the online state: the same given rows, fed in time order, must give the expected
values of every feature column the test checks. The yml is read, not copied, so a new or
changed boundary case there is checked here too."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import yaml
from support.serving import REPO_ROOT, fresh_state, load_reference, replay

from ml.serving.windows import FeatureWindows

MODELS_YML = REPO_ROOT / "models" / "marts" / "fraud" / "_fraud__models.yml"


def feature_unit_tests() -> list[dict[str, Any]]:
    tests = yaml.safe_load(MODELS_YML.read_text())["unit_tests"]
    return [test for test in tests if test["model"] == "transaction_features"]


def given(test: dict[str, Any], relation: str) -> pd.DataFrame:
    rows = next(g["rows"] for g in test["given"] if relation in g["input"])
    return pd.DataFrame(rows or [], columns=None if rows else ["transaction_id", "reported_at"])


@pytest.mark.parametrize("test", feature_unit_tests(), ids=lambda test: test["name"])
def test_online_state_passes_the_dbt_unit_test(
    test: dict[str, Any], windows: FeatureWindows
) -> None:
    # given the unit test's silver rows
    transactions = given(test, "int_transactions_deduplicated")
    reports = given(test, "int_fraud_reports_deduplicated")
    # when they are served in time order through an empty state
    online = replay(fresh_state(windows), transactions, reports)
    # then every feature the test expects has the expected value
    expected = pd.DataFrame(test["expect"]["rows"])
    columns = [c for c in expected.columns if c in windows.columns()]
    assert columns, "the unit test checks no feature"
    comparison = load_reference().compare(online, expected, columns)
    assert comparison.equal, f"{comparison.summary()}\n{comparison.examples.T}"
