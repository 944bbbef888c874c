"""``scoring.model_events``: every decision of the production loop, one row per event.

``ml replay`` (ml/replay.py) writes a row each time it scores a day, trains, validates, rejects or
promotes a model, raises a monitoring alert or completes a day; ``ml report`` reads them. One row
per event::

    event_id varchar       key: "<model name>/<business day>/<event>" (one event of a kind per day)
    event_at timestamp     when it was recorded (UTC)
    event_date date        the business day it belongs to (the replayed day)
    event varchar          one of EVENTS
    model_name varchar     registered MLflow model name
    model_version varchar  the version concerned (trained, validated, promoted, scoring...); may be null
    reason varchar         why, in one line
    details varchar        JSON object with the numbers behind the decision
    run_id varchar         the MLflow run that holds the evidence (train, validate, promote or
                           the day's replay run)

Rows are written through :mod:`ml.platform.warehouse` with ``insert_new`` on ``event_id``: writing the
same event again (a resumed replay) adds nothing. The event log is also the replay's state: the
last ``day_completed`` says where a resumed replay continues.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ml.platform.runtime import Runtime
from ml.platform.tables import MODEL_EVENTS
from ml.platform.targets import duckdb_path
from ml.platform.warehouse import Warehouse

EVENTS_TABLE = MODEL_EVENTS
#: Decisions and alerts, in the order a day can hold them.
DECISIONS: tuple[str, ...] = (
    "trained",
    "validated",
    "rejected",
    "promoted",
    "drift_alert",
    "performance_alert",
    "rolled_back",
)
#: Events of the daily routine, not decisions.
ROUTINE: tuple[str, ...] = ("scored", "day_completed")
EVENTS: tuple[str, ...] = (*DECISIONS, *ROUTINE)
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_at",
    "event_date",
    "event",
    "model_name",
    "model_version",
    "reason",
    "details",
    "run_id",
)
KEY = ("event_id",)


def event_id(model_name: str, event_date: dt.date, event: str) -> str:
    """The key of an event: one event of each kind per model and business day."""
    return f"{model_name}/{event_date.isoformat()}/{event}"


def jsonable(value: Any) -> Any:
    """JSON-safe values: dates as ISO strings, numpy scalars as Python numbers, NaN as null."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):  # pandas Timestamps too
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class ModelEvent:
    """One row of ``scoring.model_events``."""

    event_date: dt.date
    event: str
    model_name: str
    model_version: str | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    event_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}; one of {', '.join(EVENTS)}")

    @property
    def event_id(self) -> str:
        return event_id(self.model_name, self.event_date, self.event)

    def row(self) -> dict[str, Any]:
        at = self.event_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return {
            "event_id": self.event_id,
            "event_at": at,
            "event_date": self.event_date,
            "event": self.event,
            "model_name": self.model_name,
            "model_version": None if self.model_version is None else str(self.model_version),
            "reason": self.reason,
            "details": json.dumps(jsonable(self.details), sort_keys=True),
            "run_id": self.run_id,
        }


def events_frame(events: Iterable[ModelEvent]) -> pd.DataFrame:
    """The rows of ``events`` with the table's column types (varchar, timestamp, date)."""
    frame = pd.DataFrame([e.row() for e in events], columns=list(EVENT_COLUMNS))
    for column in EVENT_COLUMNS:
        if column == "event_at":
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
        elif column == "event_date":
            frame[column] = frame[column].astype("object")
        else:
            frame[column] = frame[column].astype("str").where(frame[column].notna(), None)
            frame[column] = frame[column].astype(pd.StringDtype())
    return frame


def record(wh: Warehouse, events: Iterable[ModelEvent], table: str = EVENTS_TABLE) -> int:
    """Write ``events`` (idempotent: an event whose id is in the table already is skipped);
    return the rows added."""
    frame = events_frame(events)
    if frame.empty:
        return 0
    return wh.write(frame, table, mode="insert_new", keys=list(KEY))


def read_events(
    wh: Warehouse, model_name: str | None = None, table: str = EVENTS_TABLE
) -> pd.DataFrame:
    """The events (of ``model_name`` if given) in time order; an empty frame if the table does not
    exist yet. ``event_date`` as ``datetime.date``, ``details`` parsed into dicts."""
    if not wh.exists(table):
        frame = pd.DataFrame(columns=list(EVENT_COLUMNS))
    else:
        frame = wh.read(table, list(EVENT_COLUMNS))
    if model_name is not None and not frame.empty:
        frame = frame.loc[frame["model_name"] == model_name]
    frame = frame.copy()
    frame["event_date"] = [pd.Timestamp(v).date() for v in frame["event_date"]]
    frame["details"] = [json.loads(v) if isinstance(v, str) and v else {} for v in frame["details"]]
    return frame.sort_values(["event_at", "event_id"], kind="stable").reset_index(drop=True)


BOOTSTRAP = "bootstrap"


class EventLog:
    """The events of one model, read once and kept in step with what is written: the state a
    daily operation resumes from."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.events = pd.DataFrame(columns=list(EVENT_COLUMNS))

    def load(self) -> None:
        """Read the model's events from the warehouse (none in a new DuckDB file)."""
        target = self.rt.target
        if target.type == "duckdb" and not duckdb_path(target).exists():
            return
        with self.rt.warehouse(read_only=True) as wh:
            self.events = read_events(wh, self.rt.model_name)

    def record(self, *events: ModelEvent) -> None:
        """Write ``events`` (idempotent on their ids) and keep them in memory."""
        with self.rt.warehouse() as wh:
            record(wh, events)
        rows = events_frame(events)
        rows["details"] = [json.loads(v) for v in rows["details"]]
        known = set(self.events["event_id"])
        rows = rows.loc[~rows["event_id"].isin(known)]
        self.events = (
            pd.concat([self.events, rows], ignore_index=True)
            if len(self.events)
            else rows.reset_index(drop=True)
        )

    def day_events(self, day: dt.date) -> dict[str, dict[str, Any]]:
        rows = (
            self.events.loc[self.events["event_date"] == day] if len(self.events) else self.events
        )
        return {r["event"]: r for r in rows.to_dict("records")}

    def completed(self) -> tuple[dt.date | None, dict[str, Any] | None]:
        """(last completed business day, the bootstrap's day_completed details)."""
        if self.events.empty:
            return None, None
        done = self.events.loc[self.events["event"] == "day_completed"]
        if done.empty:
            return None, None
        boot = [d for d in done["details"] if d.get("phase") == BOOTSTRAP]
        return max(done["event_date"]), (boot[0] if boot else None)

    def last_training(self, before: dt.date) -> dt.date | None:
        """The business day of the latest training attempt before ``before`` (a trained or
        rejected event; the bootstrap counts)."""
        if self.events.empty:
            return None
        rows = self.events.loc[
            self.events["event"].isin(["trained", "rejected"])
            & (self.events["event_date"] < before)
        ]
        return max(rows["event_date"]) if len(rows) else None


__all__ = [
    "BOOTSTRAP",
    "EventLog",
    "EVENTS",
    "EVENTS_TABLE",
    "EVENT_COLUMNS",
    "ModelEvent",
    "event_id",
    "events_frame",
    "jsonable",
    "read_events",
    "record",
]
