"""Retraining steps of a business day: train a challenger on the latest mature window,
validate it, promote it if it passes; an interrupted day resumes where it stopped."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from typing import Any

from ml.lifecycle import promote as promotion
from ml.lifecycle import registry, train, validate
from ml.operations import events as ev
from ml.operations.day_report import DayReport
from ml.platform.errors import DataNotReadyError


class RetrainingSteps:
    """The retraining of :class:`~ml.operations.daily.Operator` (which provides ``rt``,
    ``name``, ``delay``, ``client``, ``log``, ``on_step``, ``record`` and ``day_events``)."""

    def retrain(self, day: dt.date, triggers: list[str], report: DayReport) -> None:
        """Train a challenger on the latest mature window, validate it, promote it if it passes.

        Steps already recorded for ``day`` (an interrupted run) are not repeated.
        """
        reason = "; ".join(triggers)
        test_end = day - self.delay
        done = self.day_events(day)
        version: str | None = None
        if "trained" in done:
            version = str(done["trained"]["model_version"])
        elif "rejected" in done:  # training itself failed before the interruption
            report.decisions.append(f"rejected: {done['rejected']['reason']}")
            return
        else:
            adopted = self._interrupted_challenger(test_end)
            self.on_step(day, "ml train")
            try:
                # stderr: MLflow prints "Registered model ... already exists" lines past its log level
                with report.timed("train"), contextlib.redirect_stderr(io.StringIO()):
                    if adopted is None:
                        result = train.train(self.rt.with_settings(training={"test_end": test_end}))
            except DataNotReadyError as exc:
                self._reject(
                    day,
                    None,
                    f"{reason}; training failed: {exc}",
                    report,
                    stage="train",
                    triggers=triggers,
                    test_end=test_end,
                )
                report.decisions.append(f"training failed: {exc}")
                return
            if adopted is not None:
                version, run_id, details = adopted
            else:
                version, run_id = result.model_version, result.run_id
                details = {
                    "candidate": result.best_candidate,
                    "windows": result.windows.as_dict(),
                    "train_rows": result.train_rows,
                    "test_rows": result.test_rows,
                    "test_metrics": {
                        k: result.best.metrics.get(k)
                        for k in (
                            "roc_auc",
                            "average_precision",
                            f"card_precision_at_{self.settings.model.top_k_cards}",
                        )
                    },
                }
            self.record(
                ev.ModelEvent(
                    day,
                    "trained",
                    self.name,
                    version,
                    reason,
                    {"triggers": triggers, **details},
                    run_id,
                )
            )
        report.decisions.append(f"trained v{version} ({reason})")

        if "validated" not in done and "rejected" not in done:
            self.on_step(day, "ml validate")
            try:
                with report.timed("validate"):
                    verdict = validate.validate(
                        self.rt.with_settings(validation={"test_end": test_end})
                    )
            except DataNotReadyError as exc:
                self._reject(
                    day,
                    version,
                    f"validation could not run: {exc}",
                    report,
                    stage="validate",
                    triggers=triggers,
                )
                report.decisions.append(f"rejected v{version}: validation could not run")
                return
            details = {
                "champion_version": verdict.champion_version,
                "window": verdict.windows.as_dict(),
                "rules": [
                    {"name": r.name, "value": r.value, "threshold": r.threshold, "passed": r.passed}
                    for r in verdict.rules
                ],
                "challenger_metrics": verdict.challenger_metrics,
                "champion_metrics": verdict.champion_metrics,
            }
            kind = "validated" if verdict.passed else "rejected"
            self.record(
                ev.ModelEvent(
                    day, kind, self.name, version, verdict.summary(), details, verdict.run_id
                )
            )
            done = self.day_events(day)
        if "rejected" in done:
            report.decisions.append(f"rejected v{version}")
            return
        report.decisions.append(f"validated v{version}")

        if "promoted" not in done:
            replaced = self.champion_version()
            if replaced == version:  # promoted before the interruption
                mv = self.client.get_model_version(self.name, version)
                run_id = (mv.tags or {}).get("promotion_run_id")
                replaced = (mv.tags or {}).get("replaced_champion")
            else:
                self.on_step(day, "ml promote")
                with report.timed("promote"):
                    change = promotion.promote(
                        self.rt, version=version, reason=f"ml replay {day}: {reason}"
                    )
                run_id, replaced = change.run_id, change.replaced_version
            self.record(
                ev.ModelEvent(
                    day,
                    "promoted",
                    self.name,
                    version,
                    f"passed validation; {reason}",
                    {
                        "champion_version": version,
                        "replaced_version": replaced if replaced != "none" else None,
                    },
                    run_id,
                )
            )
        report.decisions.append(f"promoted v{version}")

    def _reject(
        self, day: dt.date, version: str | None, reason: str, report: DayReport, **details: Any
    ) -> None:
        """A ``rejected`` event: the retraining of ``day`` stopped (``details["stage"]`` says where)."""
        self.record(
            ev.ModelEvent(day, "rejected", self.name, version, reason, details, report.run_id)
        )

    def _interrupted_challenger(self, test_end: dt.date) -> tuple[str, str, dict[str, Any]] | None:
        """The @challenger that a run interrupted after training registered for this window, if any."""

        challenger = registry.version_by_alias(self.client, self.name, registry.CHALLENGER)
        if challenger is None:
            return None
        tags = dict(challenger.tags or {})
        recorded = (
            set(
                self.log.events.loc[self.log.events["event"] == "trained", "model_version"].astype(
                    str
                )
            )
            if len(self.log.events)
            else set()
        )
        if (
            tags.get("test_end") != test_end.isoformat()
            or "validation_status" in tags
            or str(challenger.version) in recorded
        ):
            return None
        return (
            str(challenger.version),
            tags.get("run_id", challenger.run_id),
            {"resumed": "registered before an interruption"},
        )
