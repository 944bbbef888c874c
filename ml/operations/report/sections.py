"""The report's sections and headline numbers, from what was read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.operations.report.context import CALENDAR_FEATURES, OPERATED, THRESHOLD_ALERTS
from ml.operations.report.data import ReportData, _as_day, _version_key
from ml.operations.report.figures import (
    PSI_MAJOR,
    PSI_MODERATE,
    ROUTINE_EVENTS,
    alerts_figure,
    drift_figure,
    performance_figure,
    shade_spans,
)
from ml.operations.report.operating import (
    curves_section,
    drift_headline_rows,
    excluded_spans,
    operating_sections,
    with_status,
)
from ml.operations.report.timeline import champion_changes, events_figure, injected_drifts
from ml.platform.settings import Settings
from ml.platform.tables import DRIFT, MODEL_EVENTS, PERFORMANCE

EVENTS_LISTED = 40


@dataclass
class Section:
    """One section of the report: a chart and/or a table, or a note saying why there is none."""

    key: str
    title: str
    intro: str
    figure: Any = None  # a plotly Figure
    note: str | None = None
    table_columns: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    source: str = ""

    @property
    def has_chart(self) -> bool:
        return self.figure is not None


# --- assembling ------------------------------------------------------------------------------------


def build_sections(
    data: ReportData, settings: Settings
) -> tuple[list[Section], list[tuple[str, str, str]]]:
    """The report's sections and its headline numbers (label, value, detail)."""
    changes = champion_changes(data.events)
    drifts = injected_drifts(data.events)
    k = settings.model.top_k_cards
    sections: list[Section] = []
    drift_note = " Dashed red lines: where the simulated world's drift starts." if drifts else ""
    champion = _champion(data, changes)
    spans = excluded_spans(data, settings, champion)
    excluded = (
        " Shaded: days that do not count — feature windows still filling (the first days of data), "
        "and the champion's pre-model days (up to its test window's end, the in-sample training "
        "window darker); the headline leaves them out."
        if spans
        else ""
    )

    perf = Section(
        "performance",
        "Model performance on matured labels",
        "Average precision and Card Precision@k of each model version, per transaction day, once the "
        "day's fraud reports have arrived (label delay). Dotted lines: champion changes."
        + drift_note
        + excluded,
        source=PERFORMANCE,
    )
    sections.append(
        _time_chart(
            perf,
            data.performance,
            lambda frame: performance_figure(frame, changes, drifts),
            spans,
            data,
        )
    )

    alerts = Section(
        "alerts",
        "Threshold alerts per day",
        f"Threshold alerts: transactions scored at or above model.alert_threshold "
        f"({settings.model.alert_threshold:g}), by scoring model version; the lines show how many of "
        "them are frauds, and all frauds, by the labels known so far. (The investigation queue, "
        "each day's top-k, is another list: see below.)" + excluded,
        source=data.alerts_source,
    )

    def draw_alerts(frame: pd.DataFrame) -> Any:
        mature_until = frame["day"].max() - pd.Timedelta(days=settings.training.delay_days)
        return alerts_figure(frame, mature_until, drifts)

    sections.append(_time_chart(alerts, data.alerts, draw_alerts, spans, data))

    drift = Section(
        "drift",
        "Feature drift (PSI)",
        f"Population stability index of each feature per day against the training reference of the "
        f"model that scored the day: below {PSI_MODERATE:g} stable, {PSI_MODERATE:g}–{PSI_MAJOR:g} "
        f"moderate, {PSI_MAJOR:g} and above a major shift. The calendar features "
        f"({', '.join(CALENDAR_FEATURES)}) follow the calendar, not the population: a single day "
        "against a week-long reference swings every weekend, so they are shown but left out of "
        "the drifted-features headline, as are the days whose windows are still filling (shaded).",
        source=DRIFT,
    )
    drift_shown = None
    if data.drift is not None:
        drift.figure, drift_shown = drift_figure(data.drift, list(settings.model.features), drifts)
        drift_shown = drift_headline_rows(drift_shown, data, settings)
        shade_spans(drift.figure, [span for span in spans if span[2] == "windows filling"])
    else:
        drift.note = data.notes.get("drift")
    sections.append(drift)

    history = Section(
        "events",
        "Champion history and retraining decisions",
        "Every model event of the production loop by business day: training, validation verdicts, "
        "promotions, drift alerts and rollbacks; above, which version was champion when."
        + drift_note,
        source=MODEL_EVENTS,
    )
    if data.events is not None:
        history.figure = events_figure(data.events, changes, drifts)
        decisions = data.events[~data.events["event"].isin(ROUTINE_EVENTS)]
        latest = decisions.sort_values(["event_at"], ascending=False, kind="stable").head(
            EVENTS_LISTED
        )
        history.table_columns = ["business day", "event", "version", "reason", "run"]
        history.table_rows = [
            [
                _day_text(r.event_date),
                str(r.event),
                f"v{r.model_version}" if _present(r.model_version) else "",
                str(r.reason) if _present(r.reason) else "",
                str(r.run_id)[:12] if _present(r.run_id) else "",
            ]
            for r in latest.itertuples()
        ]
        if len(decisions) > EVENTS_LISTED:
            history.note = f"The {EVENTS_LISTED} latest of {len(decisions)} decisions are listed."
        routine = len(data.events) - len(decisions)
        if routine:
            history.intro += (
                f" The loop's {routine} routine events ({', '.join(ROUTINE_EVENTS)}) are in the table, "
                "not charted or listed."
            )
    else:
        history.note = data.notes.get("events")
        if data.history is not None and len(data.history):
            history.note += (
                " The champion history below comes from the MLflow registry's promotion tags."
            )
            history.table_columns = list(data.history.columns)
            history.table_rows = [
                [str(v) for v in row] for row in data.history.itertuples(index=False)
            ]
    sections.append(curves_section(data, settings, Section))
    sections.extend(operating_sections(data, settings, Section))
    sections.append(history)

    registry = Section(
        "registry",
        "Model registry",
        f"MLflow aliases of {data.registry_model or settings.model.name}: the champion scores, the "
        "challenger waits for validation, previous_champion is where a rollback goes.",
        source="MLflow",
    )
    if data.registry is not None:
        registry.table_columns = ["alias", "version", "registered", "validation", "run"]
        registry.table_rows = [
            [
                r["alias"],
                f"v{r['version']}" if r["version"] != "—" else "—",
                r["created"],
                r["validation"],
                r["run_id"][:12],
            ]
            for r in data.registry
        ]
    else:
        registry.note = data.notes.get("registry")
    sections.append(registry)

    return sections, _headline(data, settings, changes, drift_shown, k)


def _time_chart(
    section: Section,
    frame: pd.DataFrame | None,
    draw: Callable[[pd.DataFrame], Any],
    spans: list[tuple[Any, Any, str]],
    data: ReportData,
) -> Section:
    """``section`` with the chart ``draw`` makes of ``frame``, the days that do not count
    (``spans``) shaded; or, when the table was not read (``frame`` None), the note saying why."""
    if frame is None:
        section.note = data.notes.get(section.key)
    else:
        section.figure = draw(frame)
        shade_spans(section.figure, spans)
    return section


def _present(value: Any) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and np.isnan(value))
        and str(value) != ""
    )


def _day_text(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d") if _present(value) else ""


def _champion(data: ReportData, changes: pd.DataFrame) -> str | None:
    registry = next(
        (
            r["version"]
            for r in data.registry or []
            if r["alias"] == "champion" and r["version"] != "—"
        ),
        None,
    )
    if registry:
        return registry
    return str(changes["champion_version"].iloc[-1]) if not changes.empty else None


def _headline(
    data: ReportData,
    settings: Settings,
    changes: pd.DataFrame,
    drift_shown: pd.DataFrame | None,
    k: int,
) -> list[tuple[str, str, str]]:
    """Headline numbers, from the days that count only (context.py: no filling, in-sample or
    pre-model day; calendar features out of the drift count)."""
    cards: list[tuple[str, str, str]] = []
    champion = _champion(data, changes)
    from_registry = any(
        r["alias"] == "champion" and r["version"] == champion for r in data.registry or []
    )
    if champion and from_registry:
        cards.append(("champion", f"v{champion}", "MLflow alias"))
    elif champion:
        cards.append(
            ("champion", f"v{champion}", f"since {_day_text(changes['event_date'].iloc[-1])}")
        )
    if data.performance is not None:
        perf = with_status(_as_day(data.performance.copy(), "tx_date"), "tx_date", data, settings)
        counted = perf[(perf["status"] == OPERATED) & perf["average_precision"].notna()]
        if champion and (counted["model_version"].astype(str) == champion).any():
            counted = counted[counted["model_version"].astype(str) == champion]
        if counted.empty:
            why = "no matured day after the model's training and test windows yet"
            cards.append(("average precision", "—", why))
            cards.append((f"card precision@{k}", "—", why))
        else:
            day = counted["tx_date"].max()
            last = counted[counted["tx_date"] == day]
            row = last.assign(_k=last["model_version"].map(_version_key)).sort_values("_k").iloc[-1]
            cards.append(
                (
                    "average precision",
                    _number(row["average_precision"]),
                    f"v{row['model_version']}, {_day_text(day)}",
                )
            )
            cards.append(
                (f"card precision@{k}", _number(row["card_precision_at_k"]), "last matured day")
            )
    if data.alerts is not None:
        day = data.alerts["day"].max()
        cards.append(
            (
                THRESHOLD_ALERTS,
                f"{int(data.alerts.loc[data.alerts['day'] == day, 'alerts'].sum()):,}",
                f"score ≥ {settings.model.alert_threshold:g}, {_day_text(day)}",
            )
        )
        counted = with_status(data.alerts, "day", data, settings)
        counted = counted[counted["status"] == OPERATED]
        lost = float(counted["fraud_amount"].sum()) if "fraud_amount" in counted else 0.0
        if lost > 0:
            caught = float(counted["caught_amount"].sum())
            cards.append(
                (
                    "fraud amount caught",
                    f"{caught / lost:.0%}",
                    f"{caught:,.0f} of {lost:,.0f} by threshold alerts, days that count",
                )
            )
    if drift_shown is not None and len(drift_shown):
        day = drift_shown["tx_date"].max()
        drifted = drift_shown[(drift_shown["tx_date"] == day) & (drift_shown["psi"] >= PSI_MAJOR)]
        cards.append(
            (
                "drifted features",
                f"{drifted['feature'].nunique()}",
                f"PSI ≥ {PSI_MAJOR:g}, {_day_text(day)}; calendar features excluded",
            )
        )
    if data.events is not None:
        counts = data.events["event"].value_counts()
        cards.append(
            (
                "retrainings",
                f"{int(counts.get('trained', 0))}",
                f"{int(counts.get('promoted', 0))} promoted, {int(counts.get('rejected', 0))} rejected",
            )
        )
    return cards


def _number(value: Any) -> str:
    return f"{float(value):.3f}" if _present(value) else "—"
