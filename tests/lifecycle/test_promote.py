"""`ml validate`, `ml promote`, `ml rollback`: verdicts on versions, aliases and their history."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from support.cli import one_line_error
from support.registry import Reg, add_dummy_version, add_trained_version, scores_of
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle import reference
from ml.lifecycle.promote import promote, rollback
from ml.lifecycle.reference import compute_reference
from ml.lifecycle.validate import (
    DESCRIPTION_MARKER,
    VALIDATION_ARTIFACT,
    validate,
    validation_rules,
)
from ml.platform.errors import ModelRegistryError
from ml.platform.runtime import Runtime
from ml.platform.tables import FEATURE_REFERENCE


def _runs(reg: Reg, command: str) -> pd.DataFrame:
    reg.client()
    runs = mlflow.search_runs(
        experiment_names=["fraudops-test"],
        filter_string=f"tags.`fraudops.command` = '{command}' and tags.model_name = '{reg.name}'",
    )
    return runs


# --- validate ------------------------------------------------------------------------------------


def test_validate_without_champion_checks_the_minimums_only(reg: Reg):
    # given a trained challenger and no champion
    version = add_trained_version(reg)

    # when it is validated
    report = validate(reg.rt)

    # then only the minimums (and the window freshness) apply, and they pass
    assert report.passed and report.champion_version is None
    assert [r.name for r in report.rules] == [
        "min_roc_auc",
        "min_average_precision",
        "min_card_precision_at_100",
        "fresh_test_window",
    ]
    # the metrics are those of the registered model on the validation test set
    from ml.lifecycle.data import load_test_set

    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        test = load_test_set(wh, reg.settings, report.windows)
    from sklearn.metrics import average_precision_score

    expected_ap = average_precision_score(test["tx_fraud"], scores_of(reg, version, test))
    assert report.challenger_metrics["average_precision"] == pytest.approx(expected_ap)
    # and the verdict is on the version
    tags = reg.version(version).tags
    assert tags["validation_status"] == "passed"
    assert tags["validated_against"] == "none"
    assert tags["validation_run_id"] == report.run_id
    assert tags["validated_by"] == "test-user"
    assert "Validation PASSED" in reg.version(version).description
    # and in an MLflow run: metrics, rules and the JSON verdict
    run = mlflow.get_run(report.run_id)
    assert run.data.metrics["challenger.average_precision"] == pytest.approx(expected_ap)
    assert run.data.tags["rule.min_roc_auc"] == "passed"
    verdict = mlflow.artifacts.load_dict(f"runs:/{report.run_id}/{VALIDATION_ARTIFACT}")
    assert verdict["status"] == "passed" and len(verdict["rules"]) == 4


@pytest.mark.parametrize(
    "own", [None, "LR trained by hand"], ids=["no-description", "own-description"]
)
def test_validate_keeps_one_validation_section_in_the_description(reg: Reg, own: str | None):
    # given a challenger (with a description of its own, or none)
    version = add_trained_version(reg)
    if own:
        reg.client().update_model_version(reg.name, version, description=own)

    # when it is validated twice
    validate(reg.rt)
    validate(reg.rt)

    # then the description keeps its text and holds one validation section
    description = reg.version(version).description
    assert description.startswith(own or DESCRIPTION_MARKER)
    assert description.count("Validation PASSED") == 1


def test_failing_minimum_exits_2_and_is_recorded(reg: Reg):
    # given a challenger and a minimum it cannot reach
    version = add_trained_version(reg)
    reg.configure(validation={"min_average_precision": 0.99})

    # when `ml validate` runs
    result = CliRunner().invoke(app, ["validate"])

    # then it exits with code 2, shows the rules and says which one failed
    assert "FAIL" in result.output
    line = one_line_error(result, exit_code=2)
    assert "FAILED" in line and "min_average_precision" in line
    # and the version is tagged failed, with the failed rule
    tags = reg.version(version).tags
    assert tags["validation_status"] == "failed"
    assert tags["validation_failed_rules"] == "min_average_precision"
    assert "Validation FAILED" in reg.version(version).description
    run = _runs(reg, "validate").iloc[0]
    assert run["tags.validation_status"] == "failed"
    assert run["tags.rule.min_average_precision"] == "failed"


def test_validate_against_champion_refuses_a_regression(reg: Reg):
    # given the trained model as champion and a constant-score model as challenger
    champion = add_trained_version(reg, alias="champion")
    challenger = add_dummy_version(reg)

    # when the challenger is validated
    report = validate(reg.rt)

    # then it fails the no-regression rule on average precision (and the minimums)
    assert not report.passed and report.champion_version == champion
    rules = {r.name: r for r in report.rules}
    ap_drop = (
        report.champion_metrics["average_precision"]
        - report.challenger_metrics["average_precision"]
    )
    assert rules["no_regression_average_precision"].value == pytest.approx(ap_drop)
    assert ap_drop > 0.02 and not rules["no_regression_average_precision"].passed
    assert not rules["min_roc_auc"].passed  # a constant score ranks nothing: AUC 0.5
    assert reg.version(challenger).tags["validated_against"] == champion
    run = mlflow.get_run(report.run_id)
    assert "champion.average_precision" in run.data.metrics


def test_validate_against_an_equal_champion_passes(reg: Reg):
    # given the same trained model as champion and as challenger (two versions)
    add_trained_version(reg, alias="champion")
    challenger = add_trained_version(reg)

    # when validated
    report = validate(reg.rt)

    # then there is no regression (0 <= max_regression) and it passes
    rules = {r.name: r for r in report.rules}
    assert rules["no_regression_average_precision"].value == pytest.approx(0.0, abs=1e-12)
    assert report.passed
    assert reg.version(challenger).tags["validated_against"] != "none"


def test_validate_without_challenger_is_one_line(reg: Reg):
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "no version with alias 'challenger'; run ml train first" in one_line_error(result)


def test_rules_use_mlflow_thresholds_at_their_boundaries(reg: Reg):
    # given metrics exactly at the thresholds
    settings = reg.configure(
        validation={
            "min_average_precision": 0.5,
            "min_roc_auc": 0.75,
            "min_card_precision_at_100": 0.25,
            "max_regression": 0.25,
        }
    )
    challenger = {"roc_auc": 0.75, "average_precision": 0.5, "card_precision_at_100": 0.25}
    champion = {"roc_auc": 0.9, "average_precision": 0.75, "card_precision_at_100": 0.5}

    # then every rule passes (>= minimum, champion - challenger <= max_regression) ...
    rules = validation_rules(settings, challenger, champion, overlap_days=0.0)
    assert all(r.passed for r in rules), rules
    # ... and fails just beyond, or when a metric is NaN, or when trained on the test window
    worse = {**challenger, "average_precision": 0.4999}
    failed = {
        r.name
        for r in validation_rules(settings, worse, champion, overlap_days=2.0)
        if not r.passed
    }
    assert failed == {
        "min_average_precision",
        "no_regression_average_precision",
        "fresh_test_window",
    }
    nan = {**challenger, "roc_auc": math.nan}
    assert {r.name for r in validation_rules(settings, nan, None) if not r.passed} == {
        "min_roc_auc"
    }


def test_reference_artifact_round_trips(feature_frame: pd.DataFrame):
    # given a training reference as ml train logs it
    ref = compute_reference(feature_frame, ["tx_amount", "tx_during_night"], bins=10, quantiles=50)

    # when it is read back from its JSON form
    back = reference.reference_from_artifact(ref.to_dict())

    # then bins (with open outer edges) and sample are identical
    pd.testing.assert_frame_equal(back.bins, ref.bins, check_dtype=False)
    pd.testing.assert_frame_equal(back.sample, ref.sample, check_dtype=False)
    assert np.isinf(back.bins["bin_lower"].iloc[0]) and np.isinf(back.bins["bin_upper"].iloc[-1])


# --- promote / rollback --------------------------------------------------------------------------


def test_promote_refuses_an_unvalidated_challenger(reg: Reg):
    version = add_trained_version(reg)
    result = CliRunner().invoke(app, ["promote"])
    assert result.exit_code == 1
    line = one_line_error(result)
    assert f"v{version} has not passed validation (validation_status=missing)" in line
    assert "--force --reason" in line
    assert reg.alias("champion") is None


def test_promote_refuses_a_failed_challenger(reg: Reg):
    add_dummy_version(reg)
    assert not validate(reg.rt).passed
    with pytest.raises(ModelRegistryError, match="validation_status=failed"):
        promote(reg.rt)


def test_force_needs_a_reason(reg: Reg):
    add_trained_version(reg)
    result = CliRunner().invoke(app, ["promote", "--force"])
    assert result.exit_code == 1
    assert "--force needs --reason" in one_line_error(result)
    assert reg.alias("champion") is None


def test_forced_promotion_records_who_and_why(reg: Reg):
    # given an unvalidated challenger
    version = add_trained_version(reg)

    # when it is forced in with a reason
    result = CliRunner().invoke(app, ["promote", "--force", "--reason", "hotfix for incident 42"])

    # then it is champion, and the version and an MLflow run say who, why and that it was forced
    assert result.exit_code == 0, result.output
    assert reg.alias("champion") == version and reg.alias("challenger") is None
    tags = reg.version(version).tags
    assert tags["promoted_by"] == "test-user"
    assert tags["promotion_reason"] == "hotfix for incident 42"
    assert tags["promotion_forced"] == "true"
    assert "validation_status=missing" in tags["promotion_blocker"]
    run = _runs(reg, "promote").iloc[0]
    assert run["params.reason"] == "hotfix for incident 42" and run["params.forced"] == "True"
    assert run["run_id"] == tags["promotion_run_id"]


def test_promote_writes_a_missing_training_reference_from_the_artifact(reg: Reg, trained):
    # given a validated challenger whose reference is not in the warehouse yet
    version = add_trained_version(reg)
    validate(reg.rt)
    table = FEATURE_REFERENCE
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        assert reference._reference_rows(wh, reg.name, version) == 0

    # when it is promoted
    change = promote(reg.rt)

    # then the reference is written from the run's artifact, equal to what ml train wrote
    assert change.reference_rows_added[0] > 0 and change.reference_rows_added[1] > 0
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        bins = wh.read(table)
        sample = wh.read(f"{table}_sample")
    ours = bins.loc[bins["model_name"] == reg.name].drop(columns=["model_name", "model_version"])
    theirs = bins.loc[bins["model_name"] == trained.model_name].drop(
        columns=["model_name", "model_version"]
    )
    pd.testing.assert_frame_equal(
        ours.sort_values(["feature", "bin_index"]).reset_index(drop=True),
        theirs.sort_values(["feature", "bin_index"]).reset_index(drop=True),
    )
    assert (sample["model_name"] == reg.name).sum() == (
        sample["model_name"] == trained.model_name
    ).sum()
    # and promoting another version later does not write it twice
    add_trained_version(reg)
    validate(reg.rt)
    assert promote(reg.rt).reference_rows_added != (0, 0)  # the new version's own
    rollback(reg.rt, reason="back")
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        assert reference._reference_rows(wh, reg.name, version) == len(ours)


def test_promote_without_any_reference_is_refused(reg: Reg):
    add_dummy_version(reg, with_reference=False)
    with pytest.raises(ModelRegistryError, match="has no training reference"):
        promote(reg.rt, force=True, reason="test")
    assert reg.alias("champion") is None


def test_promotions_keep_history_and_rollback_walks_back(reg: Reg):
    # given v1 validated and promoted, then v2 validated and promoted
    v1 = add_trained_version(reg)
    validate(reg.rt)
    first = promote(reg.rt)
    v2 = add_trained_version(reg)
    assert validate(reg.rt).champion_version == v1
    second = promote(reg.rt)

    # then v2 is champion, v1 previous_champion, and no challenger is left
    assert (first.replaced_version, second.replaced_version) == (None, v1)
    assert reg.alias("champion") == v2 and reg.alias("previous_champion") == v1
    assert reg.alias("challenger") is None
    assert reg.version(v1).tags["replaced_by"] == v2

    # when `ml rollback` runs
    result = CliRunner().invoke(app, ["rollback", "--reason", "alerts doubled overnight"])

    # then v1 is champion again, v2 is tagged as rolled back, with who and why
    assert result.exit_code == 0, result.output
    assert reg.alias("champion") == v1 and reg.alias("previous_champion") is None
    tags = reg.version(v2).tags
    assert tags["rollback_reason"] == "alerts doubled overnight"
    assert tags["rolled_back_by"] == "test-user"
    assert reg.version(v1).tags["restored_by"] == "test-user"
    assert _runs(reg, "rollback").iloc[0]["params.replaced_version"] == v2
    # and there is nothing further to roll back to
    result = CliRunner().invoke(app, ["rollback", "--reason", "again"])
    assert result.exit_code == 1
    assert "no 'previous_champion' to roll back to" in one_line_error(result)


def test_rollback_over_three_champions_steps_back_one_at_a_time(reg: Reg):
    versions = []
    for _ in range(3):
        versions.append(add_trained_version(reg))
        validate(reg.rt)
        promote(reg.rt)
    v1, v2, v3 = versions
    assert (reg.alias("champion"), reg.alias("previous_champion")) == (v3, v2)

    rollback(reg.rt, reason="first step")
    assert (reg.alias("champion"), reg.alias("previous_champion")) == (v2, v1)
    rollback(reg.rt, reason="second step")
    assert (reg.alias("champion"), reg.alias("previous_champion")) == (v1, None)


def test_stale_validation_is_refused(reg: Reg):
    # given v1 validated while there was no champion, then v2 promoted
    v1 = add_trained_version(reg)
    validate(reg.rt)
    add_trained_version(reg)
    validate(reg.rt)
    promote(reg.rt)

    # when v1 is promoted by version
    with pytest.raises(ModelRegistryError) as raised:
        promote(reg.rt, version=v1)

    # then its validation against "no champion" is stale
    assert "was validated against champion (none), but the champion is now" in str(raised.value)


def test_rollback_needs_a_reason_and_a_champion(reg: Reg):
    with pytest.raises(ModelRegistryError, match="needs --reason"):
        rollback(reg.rt, reason=" ")
    result = CliRunner().invoke(app, ["rollback", "--reason", "why not"])
    assert result.exit_code == 1
    assert (
        "has no champion to roll back; run ml train, ml validate, ml promote first"
        in one_line_error(result)
    )


def test_promoting_the_champion_again_is_refused(reg: Reg):
    version = add_trained_version(reg)
    validate(reg.rt)
    promote(reg.rt)
    with pytest.raises(ModelRegistryError, match="already the champion"):
        promote(reg.rt, version=version)


def test_a_promotion_that_crashed_after_moving_champion_is_completed_by_a_rerun(
    reg: Reg, monkeypatch
):
    # given v1 champion and v2 a validated challenger
    v1 = add_trained_version(reg)
    validate(reg.rt)
    promote(reg.rt)
    v2 = add_trained_version(reg)
    validate(reg.rt)
    # when `ml promote` dies right after `champion` moved (before the tags and the audit run)
    from mlflow import MlflowClient

    real = MlflowClient.set_model_version_tag

    def crash(self, name, version, key, value):
        if key == "promoted_at":
            raise KeyboardInterrupt("kill -9 during ml promote")
        return real(self, name, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", crash)
    with pytest.raises(KeyboardInterrupt):
        promote(reg.rt)
    monkeypatch.setattr(MlflowClient, "set_model_version_tag", real)
    assert reg.alias("champion") == v2
    # then the way back is known already, and rollback refuses to act on a half-done promotion
    assert reg.alias("previous_champion") == v1
    with pytest.raises(ModelRegistryError, match=f"promotion of {reg.name} v{v2} did not finish"):
        rollback(reg.rt, reason="too early")
    # and the same command again completes the promotion, audited, without a second history entry
    change = promote(reg.rt)
    assert (change.champion_version, change.replaced_version) == (v2, v1)
    assert reg.version(v2).tags["replaced_champion"] == v1
    assert reg.version(v1).tags["replaced_by"] == v2
    assert reg.client().get_registered_model(reg.name).tags["champion_history"] == f"{v1},{v2}"
    # and rollback knows the true previous champion
    assert rollback(reg.rt, reason="back").champion_version == v1
