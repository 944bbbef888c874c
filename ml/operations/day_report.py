"""What one business day did: its numbers, the alerts that held, the decisions, the timings."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DayReport:
    """What the replay did on one business day (the bootstrap is a day too)."""

    day: dt.date
    phase: str  # "bootstrap" | "day"
    transactions: int = 0
    fraud_reports: int = 0
    scored: int = 0
    alerts: int = 0  # predictions at or above the alert threshold
    scored_by: str | None = None
    champion_version: str | None = None  # at the end of the day
    matured_day: dt.date | None = None
    matured_average_precision: float | None = None
    drifted_features: list[str] = field(default_factory=list)
    monitoring_alerts: list[str] = field(default_factory=list)  # conditions holding today
    decisions: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    # policies' triggers left to a separate retraining task (ml operate --defer-retraining)
    retraining_due: list[str] = field(default_factory=list)
    report_path: str | None = None

    def timed(self, name: str) -> _timed:
        """A block whose wall time adds to ``seconds[name]``."""
        return _timed(self, name)

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "transactions": self.transactions,
            "fraud_reports": self.fraud_reports,
            "scored": self.scored,
            "alerts": self.alerts,
            "scored_by": self.scored_by,
            "champion_version": self.champion_version,
            "matured_day": self.matured_day,
            "matured_average_precision": self.matured_average_precision,
            "drifted_features": self.drifted_features,
            "alerts_holding": self.monitoring_alerts,
            "decisions": self.decisions,
            "retraining_due": self.retraining_due,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


class _timed:
    """Adds the block's wall time to ``report.seconds[name]``."""

    def __init__(self, report: DayReport, name: str):
        self.report, self.name = report, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.report.seconds[self.name] = (
            self.report.seconds.get(self.name, 0.0) + time.perf_counter() - self.started
        )
