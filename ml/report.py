"""``ml report``: the state of the fraud model in one self-contained HTML file.

One file that opens offline (plotly.js, CSS and data are inline; nothing is fetched), with:

1. **Model performance** — daily average precision and Card Precision@k on matured labels, one
   line per model version, promotions marked (``gold.model_performance_daily``);
2. **Alerts per day** — alerts raised by each model version, and how many of them are frauds by
   the labels known so far (``scoring.predictions`` joined to ``gold.transaction_features``; else
   ``gold.fraud_alerts``);
3. **Feature drift** — a feature x day heatmap of the population stability index against the
   scoring model's training reference (``gold.feature_drift_daily``);
4. **Champion history and retraining decisions** — from ``scoring.model_events`` (written by
   ``ml replay``): champion version over time and every trained / validated / rejected / promoted /
   drift_alert / rolled_back event;
5. **Model registry** — the MLflow aliases champion / challenger / previous_champion, if the
   registry is reachable.

Everything is read through :func:`ml.warehouse.open_warehouse` (read-only). A missing or empty
table does not fail the report: its section says what is missing and which command fills it.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.errors import ConfigError, FraudopsError
from ml.settings import Settings

DEFAULT_OUTPUT = Path("reports/fraudops-report.html")
TEMPLATE = "report.html.j2"

PERFORMANCE_TABLE = "gold.model_performance_daily"
DRIFT_TABLE = "gold.feature_drift_daily"
ALERTS_TABLE = "gold.fraud_alerts"
MODEL_EVENTS_TABLE = "scoring.model_events"

#: Columns the report reads from each table (a table without them is reported, not used).
PERFORMANCE_COLUMNS = [
    "tx_date",
    "model_name",
    "model_version",
    "n_transactions",
    "n_frauds",
    "n_alerts",
    "average_precision",
    "card_precision_k",
    "card_precision_at_k",
]
DRIFT_COLUMNS = ["tx_date", "model_name", "model_version", "feature", "n_values", "psi", "is_drifted"]
PREDICTION_COLUMNS = ["transaction_id", "is_alert", "model_name", "model_version", "scored_at"]
FEATURE_COLUMNS = ["transaction_id", "tx_date", "tx_fraud"]
FRAUD_ALERT_COLUMNS = ["alert_date", "is_alert", "model_name", "model_version"]
EVENT_COLUMNS = [
    "event_at",
    "event_date",
    "event",
    "model_name",
    "model_version",
    "reason",
    "details",
    "run_id",
]
#: Events that change the champion: the version in ``details.champion_version`` (if given) else
#: the event's ``model_version`` is the champion after the event.
CHAMPION_EVENTS = ("promoted", "rolled_back")
EVENT_ORDER = ["trained", "validated", "rejected", "promoted", "drift_alert", "performance_alert", "rolled_back"]
#: Events of the loop's daily routine, not decisions: left out of the events chart and list.
ROUTINE_EVENTS = ("scored", "day_completed")
DRIFT_COLOUR = "#c92a2a"
EVENT_STYLE = {  # colour, marker symbol
    "trained": ("#6c757d", "circle-open"),
    "validated": ("#2b8a3e", "circle"),
    "rejected": ("#e8590c", "x"),
    "promoted": ("#1864ab", "star"),
    "drift_alert": ("#c92a2a", "triangle-up"),
    "performance_alert": ("#a61e4d", "triangle-down-open"),
    "rolled_back": ("#862e9c", "triangle-down"),
}
ALIASES = ("champion", "challenger", "previous_champion")
#: PSI bands: below 0.1 stable, 0.1-0.25 moderate shift, 0.25 and above major shift.
PSI_MODERATE, PSI_MAJOR, PSI_SCALE_MAX = 0.1, 0.25, 0.5
EVENTS_LISTED = 40
# Qualitative palette for model versions (colour-blind safe, Okabe-Ito + extras).
VERSION_COLOURS = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
    "#7B3294",
]
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


class ReportError(FraudopsError):
    """The report cannot be written."""


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


@dataclass
class ReportData:
    """What the report read (None: the table is missing or unusable; see ``notes``)."""

    target: str
    location: str
    performance: pd.DataFrame | None = None
    alerts: pd.DataFrame | None = None
    alerts_source: str = ""
    drift: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    registry: list[dict[str, str]] | None = None
    registry_model: str = ""
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote."""

    path: Path
    size_bytes: int
    charts: int
    sections: list[tuple[str, str]]  # (title, "chart" | "table" | the note)


# --- reading -------------------------------------------------------------------------------------


def load_report_data(
    settings: Settings, target: str | None = None, include_registry: bool = True
) -> ReportData:
    """Read every input of the report (read-only); missing tables become notes."""
    from ml.warehouse import open_warehouse

    with open_warehouse(settings, target, read_only=True) as wh:
        data = ReportData(target=wh.target.name, location=wh.location(PERFORMANCE_TABLE))
        data.performance = _read(wh, PERFORMANCE_TABLE, PERFORMANCE_COLUMNS, data.notes, "performance", "dbt build (after ml score)")
        data.drift = _read(wh, DRIFT_TABLE, DRIFT_COLUMNS, data.notes, "drift", "dbt build (after ml score)")
        data.events = _read(wh, MODEL_EVENTS_TABLE, EVENT_COLUMNS, data.notes, "events", "ml replay")
        data.alerts, data.alerts_source = _read_alerts(wh, settings, data.notes)
    if include_registry:
        data.registry, data.registry_model, note = _read_registry(settings, target)
        if note:
            data.notes["registry"] = note
    else:
        data.notes["registry"] = "Registry not read (--no-registry)."
    return data


def _read(wh: Any, relation: str, columns: list[str], notes: dict[str, str], key: str, command: str) -> pd.DataFrame | None:
    if not wh.exists(relation):
        notes[key] = f"Table {relation} does not exist in target '{wh.target.name}' yet; {command} creates it."
        return None
    missing = [c for c in columns if c not in wh.columns(relation)]
    if missing:
        notes[key] = f"Table {relation} has no column(s) {', '.join(missing)}; rebuild it with the current code."
        return None
    frame = wh.read(relation, columns)
    if frame.empty:
        notes[key] = f"Table {relation} is empty; {command} fills it."
        return None
    return frame


def _read_alerts(wh: Any, settings: Settings, notes: dict[str, str]) -> tuple[pd.DataFrame | None, str]:
    """Alerts per (transaction day, model version) and the frauds among them (labels so far).

    A transaction scored by several versions counts once, with its latest score (as in
    gold.fraud_alerts).
    """
    predictions = settings.scoring.predictions_table
    features = settings.model.feature_table
    if wh.exists(predictions) and wh.exists(features):
        missing = [c for c in PREDICTION_COLUMNS if c not in wh.columns(predictions)]
        missing += [c for c in FEATURE_COLUMNS if c not in wh.columns(features)]
        if not missing:
            scored = wh.read(predictions, PREDICTION_COLUMNS)
            if not scored.empty:
                labels = wh.read(features, FEATURE_COLUMNS)
                scored["_version_key"] = scored["model_version"].map(_version_key)
                latest = scored.sort_values(["scored_at", "_version_key"], kind="stable").drop_duplicates(
                    "transaction_id", keep="last"
                )
                joined = latest.merge(labels, on="transaction_id", how="inner")
                joined["is_alert"] = joined["is_alert"].astype(bool)
                joined["caught"] = joined["is_alert"] & (joined["tx_fraud"] == 1)
                daily = (
                    joined.groupby(["tx_date", "model_name", "model_version"], as_index=False)
                    .agg(scored=("transaction_id", "size"), alerts=("is_alert", "sum"), caught=("caught", "sum"), frauds=("tx_fraud", "sum"))
                    .rename(columns={"tx_date": "day"})
                )
                return _as_day(daily, "day"), f"{predictions} + {features}"
    if wh.exists(ALERTS_TABLE) and all(c in wh.columns(ALERTS_TABLE) for c in FRAUD_ALERT_COLUMNS):
        queue = wh.read(ALERTS_TABLE, FRAUD_ALERT_COLUMNS)
        if not queue.empty:
            queue["is_alert"] = queue["is_alert"].astype(bool)
            daily = (
                queue.groupby(["alert_date", "model_name", "model_version"], as_index=False)
                .agg(scored=("is_alert", "size"), alerts=("is_alert", "sum"))
                .rename(columns={"alert_date": "day"})
            )
            daily["caught"] = np.nan
            daily["frauds"] = np.nan
            return _as_day(daily, "day"), ALERTS_TABLE
    notes["alerts"] = (
        f"No scored transactions: {predictions} and {ALERTS_TABLE} are missing or empty in target "
        f"'{wh.target.name}'; ml score (then dbt build) fills them."
    )
    return None, ""


def _read_registry(settings: Settings, target: str | None) -> tuple[list[dict[str, str]] | None, str, str | None]:
    """(rows per alias, model name, note): the registry's aliases, without creating anything."""
    from ml.mlflow_uris import mlflow_locations
    from ml.warehouse import resolve_target

    try:
        locations = mlflow_locations(settings, resolve_target(settings, target))
    except ConfigError as exc:
        return None, "", f"MLflow registry not read: {exc}"
    uri = locations.registry_uri or locations.tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            return None, locations.model_name, f"No MLflow registry at {path} yet; ml train creates it."
        uri = f"sqlite:///{path}"
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=uri if locations.registry_uri is None else locations.tracking_uri, registry_uri=uri)
        try:
            model = client.get_registered_model(locations.model_name)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return None, locations.model_name, f"Model {locations.model_name} is not registered yet; ml train registers it."
            raise
        rows = []
        for alias in ALIASES:
            version = (model.aliases or {}).get(alias)
            if version is None:
                rows.append({"alias": alias, "version": "—", "created": "", "validation": "", "run_id": ""})
                continue
            mv = client.get_model_version(locations.model_name, str(version))
            created = dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC) if mv.creation_timestamp else None
            rows.append(
                {
                    "alias": alias,
                    "version": str(version),
                    "created": created.strftime("%Y-%m-%d %H:%M UTC") if created else "",
                    "validation": (mv.tags or {}).get("validation_status", ""),
                    "run_id": mv.run_id or "",
                }
            )
        return rows, locations.model_name, None
    except Exception as exc:  # noqa: BLE001 - any store/driver/network error: the report goes on without it
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return None, locations.model_name, f"MLflow registry not reachable ({first})."


def _as_day(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame[column] = pd.to_datetime(frame[column]).dt.normalize()
    return frame


def _version_key(version: Any) -> tuple[int, int, str]:
    text = str(version)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


def _sorted_versions(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna()}, key=_version_key)


def _label(model_name: str, version: str, several_names: bool) -> str:
    return f"{model_name} v{version}" if several_names else f"v{version}"


# --- champion history ------------------------------------------------------------------------------


def champion_changes(events: pd.DataFrame | None) -> pd.DataFrame:
    """One row per champion change (day, event, champion version after it), in time order."""
    columns = ["event_date", "event_at", "event", "champion_version", "reason"]
    if events is None or events.empty:
        return pd.DataFrame(columns=columns)
    changes = events[events["event"].isin(CHAMPION_EVENTS)].copy()
    if changes.empty:
        return pd.DataFrame(columns=columns)

    def champion(row: pd.Series) -> str:
        try:
            details = json.loads(row["details"]) if isinstance(row["details"], str) and row["details"] else {}
        except json.JSONDecodeError:
            details = {}
        value = details.get("champion_version") if isinstance(details, dict) else None
        return str(value if value is not None else row["model_version"])

    changes["champion_version"] = changes.apply(champion, axis=1)
    changes["event_date"] = pd.to_datetime(changes["event_date"]).dt.normalize()
    return changes.sort_values(["event_at", "event_date"], kind="stable")[columns].reset_index(drop=True)


# --- figures ---------------------------------------------------------------------------------------


def _colours(versions: list[str]) -> dict[str, str]:
    return {v: VERSION_COLOURS[i % len(VERSION_COLOURS)] for i, v in enumerate(versions)}


def _base_layout(fig: Any, height: int) -> None:
    """House look: white, system font, the legend in a row at the very top of the figure (above
    subplot titles and day marks)."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 30, "t": 80, "b": 40},
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
        hovermode="x unified",
        legend={"orientation": "h", "yref": "container", "y": 1, "yanchor": "top", "x": 0, "traceorder": "normal"},
    )


def _mark_days(fig: Any, marks: list[tuple[pd.Timestamp, str, str]], dash: str = "dot") -> None:
    """Vertical lines (dotted by default) with a label at the top, on every x axis (shared)."""
    for day, text, colour in marks:
        fig.add_shape(
            type="line", xref="x", yref="paper", x0=day, x1=day, y0=0, y1=1,
            line={"color": colour, "width": 1.5, "dash": dash},
        )
        fig.add_annotation(
            x=day, y=1.0, xref="x", yref="paper", text=text, showarrow=False, yanchor="bottom",
            font={"size": 11, "color": colour}, bgcolor="rgba(255,255,255,0.8)",
        )


def injected_drifts(events: pd.DataFrame | None) -> list[tuple[pd.Timestamp, str]]:
    """(start day, kind) of each drift the replay's simulated world injects: the
    ``simulation.drift`` that the bootstrap's ``day_completed`` event recorded. None for a
    replay without drift, or for data that was not simulated."""
    if events is None or events.empty:
        return []
    found: list[tuple[pd.Timestamp, str]] = []
    for raw in events.loc[events["event"] == "day_completed", "details"]:
        try:
            details = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        except (TypeError, ValueError):
            continue
        if details.get("phase") != "bootstrap":
            continue
        for drift in (details.get("simulation") or {}).get("drift") or []:
            if drift.get("start"):
                found.append((pd.Timestamp(drift["start"]), str(drift.get("kind", "drift"))))
    return sorted(set(found))


def _mark_drifts(fig: Any, drifts: list[tuple[pd.Timestamp, str]]) -> None:
    """Dashed red lines where the simulated world changes (label: the drift's kind)."""
    marks = [(day, f"drift: {kind.replace('_', ' ')}", DRIFT_COLOUR) for day, kind in drifts]
    _mark_days(fig, marks, dash="dash")


def performance_figure(
    performance: pd.DataFrame, changes: pd.DataFrame, drifts: list[tuple[pd.Timestamp, str]] = ()
) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = _as_day(performance.copy(), "tx_date")
    k = int(frame["card_precision_k"].dropna().iloc[0]) if frame["card_precision_k"].notna().any() else 100
    versions = _sorted_versions(frame["model_version"])
    colours = _colours(versions)
    several = frame["model_name"].nunique() > 1
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
        subplot_titles=("Average precision", f"Card Precision@{k}"),
    )
    for (name, version), rows in frame.groupby(["model_name", "model_version"], sort=False):
        rows = rows.sort_values("tx_date")
        label = _label(name, str(version), several)
        custom = np.stack([rows["n_transactions"], rows["n_frauds"], rows["n_alerts"]], axis=-1)
        for row, column in ((1, "average_precision"), (2, "card_precision_at_k")):
            fig.add_trace(
                go.Scatter(
                    x=rows["tx_date"], y=rows[column], name=label, legendgroup=label,
                    showlegend=row == 1, mode="lines+markers",
                    line={"color": colours[str(version)], "width": 2}, marker={"size": 5},
                    customdata=custom,
                    hovertemplate=f"{label}: %{{y:.3f}} (%{{customdata[1]}} frauds / %{{customdata[0]}} tx)<extra></extra>",
                ),
                row=row, col=1,
            )
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(range=[0, max(0.05, float(frame["card_precision_at_k"].max()) * 1.15)], row=2, col=1)
    _base_layout(fig, 520)
    marks = [
        (row.event_date, f"v{row.champion_version} {'champion' if row.event == 'promoted' else 'rolled back'}",
         colours.get(row.champion_version, "#495057"))
        for row in changes.itertuples()
    ]
    if not marks:  # no events table: mark the first matured day of each version
        firsts = frame.groupby("model_version")["tx_date"].min()
        marks = [(day, f"v{v}", colours[str(v)]) for v, day in firsts.items() if day > frame["tx_date"].min()]
    _mark_days(fig, marks)
    _mark_drifts(fig, list(drifts))
    return fig


def alerts_figure(
    alerts: pd.DataFrame, mature_until: pd.Timestamp | None, drifts: list[tuple[pd.Timestamp, str]] = ()
) -> Any:
    import plotly.graph_objects as go

    versions = _sorted_versions(alerts["model_version"])
    colours = _colours(versions)
    several = alerts["model_name"].nunique() > 1
    fig = go.Figure()
    for (name, version), rows in alerts.groupby(["model_name", "model_version"], sort=False):
        rows = rows.sort_values("day")
        label = _label(name, str(version), several)
        fig.add_trace(
            go.Bar(
                x=rows["day"], y=rows["alerts"], name=f"alerts {label}", marker_color=colours[str(version)],
                customdata=rows["scored"], hovertemplate=f"alerts {label}: %{{y}} of %{{customdata}} scored<extra></extra>",
            )
        )
    if alerts["caught"].notna().any():
        daily = alerts.groupby("day", as_index=False).agg(caught=("caught", "sum"), frauds=("frauds", "sum"))
        fig.add_trace(
            go.Scatter(
                x=daily["day"], y=daily["caught"], name="of which frauds", mode="lines+markers",
                line={"color": "#212529", "width": 2}, marker={"size": 5},
                hovertemplate="frauds among alerts: %{y}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=daily["day"], y=daily["frauds"], name="all frauds", mode="lines",
                line={"color": "#c92a2a", "width": 1.5, "dash": "dash"},
                hovertemplate="frauds (labels so far): %{y}<extra></extra>",
            )
        )
        last = alerts["day"].max()
        if mature_until is not None and mature_until < last:
            fig.add_shape(
                type="rect", xref="x", yref="paper", x0=mature_until + pd.Timedelta(hours=12),
                x1=last + pd.Timedelta(hours=12), y0=0, y1=1, fillcolor="#adb5bd", opacity=0.18, line_width=0,
                layer="below",
            )
            fig.add_annotation(
                x=mature_until + pd.Timedelta(hours=12), y=1, xref="x", yref="paper", xanchor="left",
                yanchor="top", showarrow=False, text="labels not mature yet", font={"size": 11, "color": "#495057"},
            )
    fig.update_layout(barmode="stack", yaxis_title="transactions")
    _base_layout(fig, 380)
    _mark_drifts(fig, list(drifts))
    return fig


def drift_figure(
    drift: pd.DataFrame, feature_order: list[str], drifts: list[tuple[pd.Timestamp, str]] = ()
) -> tuple[Any, pd.DataFrame]:
    """The PSI heatmap (feature x day) and the rows it shows: per day, the version that scored most
    of the day's transactions (ties: the highest version)."""
    import plotly.graph_objects as go

    frame = _as_day(drift.copy(), "tx_date")
    frame["_version_key"] = frame["model_version"].map(_version_key)
    volume = frame.groupby(["tx_date", "model_name", "model_version", "_version_key"], as_index=False)["n_values"].max()
    chosen = volume.sort_values(["tx_date", "n_values", "_version_key"]).drop_duplicates("tx_date", keep="last")
    shown = frame.merge(chosen[["tx_date", "model_name", "model_version"]], on=["tx_date", "model_name", "model_version"])
    features = [f for f in feature_order if f in set(shown["feature"])]
    features += sorted(set(shown["feature"]) - set(features))
    psi = shown.pivot_table(index="feature", columns="tx_date", values="psi", aggfunc="max").reindex(features)
    version = shown.pivot_table(index="feature", columns="tx_date", values="model_version", aggfunc="first").reindex(features)
    # top to bottom in the given order
    psi, version = psi.iloc[::-1], version.iloc[::-1]
    cap = PSI_SCALE_MAX
    fig = go.Figure(
        go.Heatmap(
            z=psi.to_numpy(dtype=float), x=list(psi.columns), y=list(psi.index),
            customdata=version.fillna("").to_numpy(),
            zmin=0, zmax=cap, xgap=1, ygap=1, hoverongaps=False,
            colorscale=[
                [0.0, "#f1f8f1"], [PSI_MODERATE / cap, "#b7e1b0"],
                [PSI_MODERATE / cap + 1e-6, "#ffe08a"], [PSI_MAJOR / cap, "#fd9a44"],
                [PSI_MAJOR / cap + 1e-6, "#e03131"], [1.0, "#67000d"],
            ],
            colorbar={"title": {"text": "PSI"}, "tickvals": [0, PSI_MODERATE, PSI_MAJOR, cap],
                      "ticktext": ["0", "0.1", "0.25", f"≥{cap:g}"], "thickness": 14},
            hovertemplate="%{y}<br>%{x|%Y-%m-%d}: PSI %{z:.3f} (model v%{customdata})<extra></extra>",
        )
    )
    _base_layout(fig, 90 + 24 * len(features))
    fig.update_layout(hovermode="closest", margin={"l": 250, "r": 30, "t": 30 if drifts else 20, "b": 40})
    _mark_drifts(fig, list(drifts))
    return fig, shown


def events_figure(
    events: pd.DataFrame, changes: pd.DataFrame, drifts: list[tuple[pd.Timestamp, str]] = ()
) -> Any:
    """The champion's version over time and a marker per decision (routine events left out)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = events[~events["event"].isin(ROUTINE_EVENTS)].copy()
    frame["event_date"] = pd.to_datetime(frame["event_date"]).dt.normalize()
    kinds = [k for k in EVENT_ORDER if k in set(frame["event"])]
    kinds += sorted(set(frame["event"]) - set(kinds))
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, row_heights=[0.38, 0.62],
        subplot_titles=("Champion version", "Events"),
    )
    if not changes.empty:  # to the last day of the loop (its routine events included)
        end = max(pd.to_datetime(events["event_date"]).max().normalize(), changes["event_date"].max())
        x = [*changes["event_date"], end]
        y = [*changes["champion_version"], changes["champion_version"].iloc[-1]]
        fig.add_trace(
            go.Scatter(
                x=x, y=[f"v{v}" for v in y], mode="lines+markers", line={"shape": "hv", "color": "#1864ab", "width": 2.5},
                marker={"size": 7}, name="champion", showlegend=False,
                hovertemplate="champion %{y} from %{x|%Y-%m-%d}<extra></extra>",
            ),
            row=1, col=1,
        )
        order = sorted(set(changes["champion_version"]), key=_version_key)
        fig.update_yaxes(
            categoryorder="array", categoryarray=[f"v{v}" for v in order],
            range=[-0.5, len(order) - 0.5], row=1, col=1,
        )
    for kind in kinds:
        rows = frame[frame["event"] == kind]
        colour, symbol = EVENT_STYLE.get(kind, ("#495057", "diamond"))
        text = [
            f"v{v or '?'}: {html.escape(str(r or ''))[:160]}"
            for v, r in zip(rows["model_version"].fillna(""), rows["reason"].fillna(""), strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=rows["event_date"], y=[kind] * len(rows), mode="markers", name=kind,
                marker={"color": colour, "symbol": symbol, "size": 11, "line": {"width": 1.5, "color": colour}},
                text=text, hovertemplate="%{x|%Y-%m-%d} " + kind + " %{text}<extra></extra>",
            ),
            row=2, col=1,
        )
    fig.update_yaxes(
        categoryorder="array", categoryarray=kinds[::-1], range=[-0.6, len(kinds) - 0.4], row=2, col=1
    )
    _base_layout(fig, 200 + 34 * len(kinds) + 120)
    fig.update_layout(hovermode="closest")
    _mark_drifts(fig, list(drifts))
    return fig


# --- assembling ------------------------------------------------------------------------------------


def build_sections(data: ReportData, settings: Settings) -> tuple[list[Section], list[tuple[str, str, str]]]:
    """The report's sections and its headline numbers (label, value, detail)."""
    changes = champion_changes(data.events)
    drifts = injected_drifts(data.events)
    k = settings.model.top_k_cards
    sections: list[Section] = []
    drift_note = " Dashed red lines: where the simulated world's drift starts." if drifts else ""

    perf = Section(
        "performance", "Model performance on matured labels",
        "Average precision and Card Precision@k of each model version, per transaction day, once the "
        "day's fraud reports have arrived (label delay). Dotted lines: champion changes." + drift_note,
        source=PERFORMANCE_TABLE,
    )
    if data.performance is not None:
        perf.figure = performance_figure(data.performance, changes, drifts)
    else:
        perf.note = data.notes.get("performance")
    sections.append(perf)

    alerts = Section(
        "alerts", "Alerts per day",
        "Transactions flagged by the model (score at or above the alert threshold), by scoring model "
        "version; the lines show how many of them are frauds, and all frauds, by the labels known so far.",
        source=data.alerts_source,
    )
    mature_until = None
    if data.alerts is not None:
        last = data.alerts["day"].max()
        mature_until = last - pd.Timedelta(days=settings.training.delay_days)
        alerts.figure = alerts_figure(data.alerts, mature_until, drifts)
    else:
        alerts.note = data.notes.get("alerts")
    sections.append(alerts)

    drift = Section(
        "drift", "Feature drift (PSI)",
        f"Population stability index of each feature per day against the training reference of the "
        f"model that scored the day: below {PSI_MODERATE:g} stable, {PSI_MODERATE:g}–{PSI_MAJOR:g} "
        f"moderate, {PSI_MAJOR:g} and above a major shift.",
        source=DRIFT_TABLE,
    )
    drift_shown = None
    if data.drift is not None:
        drift.figure, drift_shown = drift_figure(data.drift, list(settings.model.features), drifts)
    else:
        drift.note = data.notes.get("drift")
    sections.append(drift)

    history = Section(
        "events", "Champion history and retraining decisions",
        "Every model event of the production loop by business day: training, validation verdicts, "
        "promotions, drift alerts and rollbacks; above, which version was champion when." + drift_note,
        source=MODEL_EVENTS_TABLE,
    )
    if data.events is not None:
        history.figure = events_figure(data.events, changes, drifts)
        decisions = data.events[~data.events["event"].isin(ROUTINE_EVENTS)]
        latest = decisions.sort_values(["event_at"], ascending=False, kind="stable").head(EVENTS_LISTED)
        history.table_columns = ["business day", "event", "version", "reason", "run"]
        history.table_rows = [
            [_day_text(r.event_date), str(r.event), f"v{r.model_version}" if _present(r.model_version) else "",
             str(r.reason) if _present(r.reason) else "", str(r.run_id)[:12] if _present(r.run_id) else ""]
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
    sections.append(history)

    registry = Section(
        "registry", "Model registry",
        f"MLflow aliases of {data.registry_model or settings.model.name}: the champion scores, the "
        "challenger waits for validation, previous_champion is where a rollback goes.",
        source="MLflow",
    )
    if data.registry is not None:
        registry.table_columns = ["alias", "version", "registered", "validation", "run"]
        registry.table_rows = [
            [r["alias"], f"v{r['version']}" if r["version"] != "—" else "—", r["created"], r["validation"], r["run_id"][:12]]
            for r in data.registry
        ]
    else:
        registry.note = data.notes.get("registry")
    sections.append(registry)

    return sections, _headline(data, changes, drift_shown, k)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) != ""


def _day_text(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d") if _present(value) else ""


def _headline(
    data: ReportData, changes: pd.DataFrame, drift_shown: pd.DataFrame | None, k: int
) -> list[tuple[str, str, str]]:
    cards: list[tuple[str, str, str]] = []
    champion = next((r["version"] for r in data.registry or [] if r["alias"] == "champion" and r["version"] != "—"), None)
    if champion:
        cards.append(("champion", f"v{champion}", "MLflow alias"))
    elif not changes.empty:
        cards.append(("champion", f"v{changes['champion_version'].iloc[-1]}", f"since {_day_text(changes['event_date'].iloc[-1])}"))
    if data.performance is not None:
        perf = _as_day(data.performance.copy(), "tx_date")
        day = perf["tx_date"].max()
        last = perf[perf["tx_date"] == day]
        if champion and (last["model_version"].astype(str) == champion).any():
            last = last[last["model_version"].astype(str) == champion]
        row = last.assign(_k=last["model_version"].map(_version_key)).sort_values("_k").iloc[-1]
        cards.append(("average precision", _number(row["average_precision"]), f"v{row['model_version']}, {_day_text(day)}"))
        cards.append((f"card precision@{k}", _number(row["card_precision_at_k"]), "last matured day"))
    if data.alerts is not None:
        day = data.alerts["day"].max()
        cards.append(("alerts", f"{int(data.alerts.loc[data.alerts['day'] == day, 'alerts'].sum()):,}", _day_text(day)))
    if drift_shown is not None:
        day = drift_shown["tx_date"].max()
        drifted = drift_shown[(drift_shown["tx_date"] == day) & (drift_shown["psi"] >= PSI_MAJOR)]
        cards.append(("drifted features", f"{drifted['feature'].nunique()}", f"PSI ≥ {PSI_MAJOR:g}, {_day_text(day)}"))
    if data.events is not None:
        counts = data.events["event"].value_counts()
        cards.append(("retrainings", f"{int(counts.get('trained', 0))}", f"{int(counts.get('promoted', 0))} promoted, {int(counts.get('rejected', 0))} rejected"))
    return cards


def _number(value: Any) -> str:
    return f"{float(value):.3f}" if _present(value) else "—"


def render_html(sections: list[Section], headline: list[tuple[str, str, str]], data: ReportData, generated_at: dt.datetime) -> str:
    """The whole report as one HTML document (plotly.js inline, once)."""
    import jinja2
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ml", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    charts = {
        s.key: pio.to_html(
            s.figure, full_html=False, include_plotlyjs=False, config=PLOT_CONFIG,
            div_id=f"chart-{s.key}-{uuid.uuid4().hex[:8]}", default_height=f"{s.figure.layout.height}px",
        )
        for s in sections
        if s.has_chart
    }
    return env.get_template(TEMPLATE).render(
        sections=sections,
        charts=charts,
        headline=headline,
        data=data,
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        plotlyjs=get_plotlyjs(),
    )


def write_report(
    settings: Settings,
    output: Path | str = DEFAULT_OUTPUT,
    target: str | None = None,
    include_registry: bool = True,
) -> ReportResult:
    """Read the warehouse (and the registry), build the report and write it to ``output``."""
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--output {output} must end with .html")
    data = load_report_data(settings, target, include_registry=include_registry)
    sections, headline = build_sections(data, settings)
    document = render_html(sections, headline, data, dt.datetime.now(dt.UTC))
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(document, encoding="utf-8")
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write the report {output}: {exc.strerror or exc}; choose another --output") from None
    return ReportResult(
        path=output,
        size_bytes=output.stat().st_size,
        charts=sum(s.has_chart for s in sections),
        sections=[(s.title, "chart" if s.has_chart else "table" if s.table_rows else (s.note or "")) for s in sections],
    )
