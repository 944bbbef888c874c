"""The report's charts (plotly): performance, alerts, drift, decisions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.operations.events import DECISIONS, ROUTINE
from ml.operations.report.data import _as_day, _label, _sorted_versions, _version_key

#: Events that change the champion: the version in ``details.champion_version`` (if given) else
#: the event's ``model_version`` is the champion after the event.
CHAMPION_EVENTS = ("promoted", "rolled_back")
EVENT_ORDER = list(DECISIONS)
#: Events of the loop's daily routine, not decisions: left out of the events chart and list.
ROUTINE_EVENTS = ROUTINE
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
#: PSI bands: below 0.1 stable, 0.1-0.25 moderate shift, 0.25 and above major shift.
PSI_MODERATE, PSI_MAJOR, PSI_SCALE_MAX = 0.1, 0.25, 0.5
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


# --- champion history ------------------------------------------------------------------------------


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
        legend={
            "orientation": "h",
            "yref": "container",
            "y": 1,
            "yanchor": "top",
            "x": 0,
            "traceorder": "normal",
        },
    )


def _full_height(fig: Any, kind: str, first: Any, last: Any, **style: Any) -> None:
    """A ``kind`` shape ("line", "rect") from ``first`` to ``last`` on the x axis, the plot's
    full height."""
    fig.add_shape(type=kind, xref="x", yref="paper", x0=first, x1=last, y0=0, y1=1, **style)


def _mark_days(fig: Any, marks: list[tuple[pd.Timestamp, str, str]], dash: str = "dot") -> None:
    """Vertical lines (dotted by default) with a label at the top, on every x axis (shared)."""
    for day, text, colour in marks:
        _full_height(fig, "line", day, day, line={"color": colour, "width": 1.5, "dash": dash})
        fig.add_annotation(
            x=day,
            y=1.0,
            xref="x",
            yref="paper",
            text=text,
            showarrow=False,
            yanchor="bottom",
            font={"size": 11, "color": colour},
            bgcolor="rgba(255,255,255,0.8)",
        )


def _mark_drifts(fig: Any, drifts: list[tuple[pd.Timestamp, str]]) -> None:
    """Dashed red lines where the simulated world changes (label: the drift's kind)."""
    marks = [(day, f"drift: {kind.replace('_', ' ')}", DRIFT_COLOUR) for day, kind in drifts]
    _mark_days(fig, marks, dash="dash")


def _line(
    x: Any,
    y: Any,
    name: str,
    colour: str,
    *,
    width: float = 2,
    dash: str | None = None,
    mode: str = "lines",
    **trace: Any,
) -> Any:
    """A line trace in ``colour`` (dashed if ``dash``); ``trace``: more go.Scatter properties."""
    import plotly.graph_objects as go

    line = {"color": colour, "width": width}
    if dash:
        line["dash"] = dash
    return go.Scatter(x=x, y=y, name=name, mode=mode, line=line, **trace)


def _band(fig: Any, first: Any, last: Any, colour: str, opacity: float, **shape: Any) -> None:
    """A shaded band from ``first`` to ``last`` on the x axis, behind the traces."""
    _full_height(
        fig,
        "rect",
        first,
        last,
        fillcolor=colour,
        opacity=opacity,
        line_width=0,
        layer="below",
        **shape,
    )


def _band_label(fig: Any, x: Any, text: str, *, at: str, size: int) -> None:
    """Grey text starting at ``x``, inside the plot's ``at`` edge ("top" or "bottom")."""
    fig.add_annotation(
        x=x,
        y=1 if at == "top" else 0,
        xref="x",
        yref="paper",
        xanchor="left",
        yanchor=at,
        showarrow=False,
        text=text,
        font={"size": size, "color": "#495057"},
    )


def performance_figure(
    performance: pd.DataFrame, changes: pd.DataFrame, drifts: list[tuple[pd.Timestamp, str]] = ()
) -> Any:
    from plotly.subplots import make_subplots

    frame = _as_day(performance.copy(), "tx_date")
    k = (
        int(frame["card_precision_k"].dropna().iloc[0])
        if frame["card_precision_k"].notna().any()
        else 100
    )
    versions = _sorted_versions(frame["model_version"])
    colours = _colours(versions)
    several = frame["model_name"].nunique() > 1
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=("Average precision", f"Card Precision@{k}"),
    )
    for (name, version), rows in frame.groupby(["model_name", "model_version"], sort=False):
        rows = rows.sort_values("tx_date")
        label = _label(name, str(version), several)
        custom = np.stack([rows["n_transactions"], rows["n_frauds"], rows["n_alerts"]], axis=-1)
        for row, column in ((1, "average_precision"), (2, "card_precision_at_k")):
            fig.add_trace(
                _line(
                    rows["tx_date"],
                    rows[column],
                    label,
                    colours[str(version)],
                    legendgroup=label,
                    showlegend=row == 1,
                    mode="lines+markers",
                    marker={"size": 5},
                    customdata=custom,
                    hovertemplate=f"{label}: %{{y:.3f}} (%{{customdata[1]}} frauds / %{{customdata[0]}} tx)<extra></extra>",
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(
        range=[0, max(0.05, float(frame["card_precision_at_k"].max()) * 1.15)], row=2, col=1
    )
    _base_layout(fig, 520)
    marks = [
        (
            row.event_date,
            f"v{row.champion_version} {'champion' if row.event == 'promoted' else 'rolled back'}",
            colours.get(row.champion_version, "#495057"),
        )
        for row in changes.itertuples()
    ]
    if not marks:  # no events table: mark the first matured day of each version
        firsts = frame.groupby("model_version")["tx_date"].min()
        marks = [
            (day, f"v{v}", colours[str(v)])
            for v, day in firsts.items()
            if day > frame["tx_date"].min()
        ]
    _mark_days(fig, marks)
    _mark_drifts(fig, list(drifts))
    return fig


def alerts_figure(
    alerts: pd.DataFrame,
    mature_until: pd.Timestamp | None,
    drifts: list[tuple[pd.Timestamp, str]] = (),
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
                x=rows["day"],
                y=rows["alerts"],
                name=f"alerts {label}",
                marker_color=colours[str(version)],
                customdata=rows["scored"],
                hovertemplate=f"alerts {label}: %{{y}} of %{{customdata}} scored<extra></extra>",
            )
        )
    if alerts["caught"].notna().any():
        daily = alerts.groupby("day", as_index=False).agg(
            caught=("caught", "sum"), frauds=("frauds", "sum")
        )
        fig.add_trace(
            _line(
                daily["day"],
                daily["caught"],
                "of which frauds",
                "#212529",
                mode="lines+markers",
                marker={"size": 5},
                hovertemplate="frauds among alerts: %{y}<extra></extra>",
            )
        )
        fig.add_trace(
            _line(
                daily["day"],
                daily["frauds"],
                "all frauds",
                "#c92a2a",
                width=1.5,
                dash="dash",
                hovertemplate="frauds (labels so far): %{y}<extra></extra>",
            )
        )
        last = alerts["day"].max()
        if mature_until is not None and mature_until < last:
            immature = mature_until + pd.Timedelta(hours=12)
            _band(fig, immature, last + pd.Timedelta(hours=12), "#adb5bd", 0.18)
            _band_label(fig, immature, "labels not mature yet", at="top", size=11)
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
    volume = frame.groupby(
        ["tx_date", "model_name", "model_version", "_version_key"], as_index=False
    )["n_values"].max()
    chosen = volume.sort_values(["tx_date", "n_values", "_version_key"]).drop_duplicates(
        "tx_date", keep="last"
    )
    shown = frame.merge(
        chosen[["tx_date", "model_name", "model_version"]],
        on=["tx_date", "model_name", "model_version"],
    )
    features = [f for f in feature_order if f in set(shown["feature"])]
    features += sorted(set(shown["feature"]) - set(features))
    psi = shown.pivot_table(
        index="feature", columns="tx_date", values="psi", aggfunc="max"
    ).reindex(features)
    version = shown.pivot_table(
        index="feature", columns="tx_date", values="model_version", aggfunc="first"
    ).reindex(features)
    # top to bottom in the given order
    psi, version = psi.iloc[::-1], version.iloc[::-1]
    cap = PSI_SCALE_MAX
    fig = go.Figure(
        go.Heatmap(
            z=psi.to_numpy(dtype=float),
            x=list(psi.columns),
            y=list(psi.index),
            customdata=version.fillna("").to_numpy(),
            zmin=0,
            zmax=cap,
            xgap=1,
            ygap=1,
            hoverongaps=False,
            colorscale=[
                [0.0, "#f1f8f1"],
                [PSI_MODERATE / cap, "#b7e1b0"],
                [PSI_MODERATE / cap + 1e-6, "#ffe08a"],
                [PSI_MAJOR / cap, "#fd9a44"],
                [PSI_MAJOR / cap + 1e-6, "#e03131"],
                [1.0, "#67000d"],
            ],
            colorbar={
                "title": {"text": "PSI"},
                "tickvals": [0, PSI_MODERATE, PSI_MAJOR, cap],
                "ticktext": ["0", "0.1", "0.25", f"≥{cap:g}"],
                "thickness": 14,
            },
            hovertemplate="%{y}<br>%{x|%Y-%m-%d}: PSI %{z:.3f} (model v%{customdata})<extra></extra>",
        )
    )
    _base_layout(fig, 90 + 24 * len(features))
    fig.update_layout(
        hovermode="closest", margin={"l": 250, "r": 30, "t": 30 if drifts else 20, "b": 40}
    )
    _mark_drifts(fig, list(drifts))
    return fig, shown


SPAN_COLOURS = {"windows filling": "#adb5bd", "pre-model": "#ffd8a8", "in-sample": "#ffa94d"}


def shade_spans(fig: Any, spans: list[tuple[Any, Any, str]]) -> None:
    """Shade the days that do not count (context.py), labelled at the bottom of the chart."""
    for first, last, label in spans:
        colour = next((c for key, c in SPAN_COLOURS.items() if label.endswith(key)), "#dee2e6")
        first, last = pd.Timestamp(first), pd.Timestamp(last)
        _band(
            fig,
            first - pd.Timedelta(hours=12),
            last + pd.Timedelta(hours=12),
            colour,
            0.22,
            name=f"excluded: {label}",
        )
        _band_label(fig, first, f"excluded: {label}", at="bottom", size=10)


def curves_figure(curve: pd.DataFrame, threshold: float) -> Any:
    """Precision-recall curve, and precision / recall against the alert threshold."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Precision-recall", "Precision and recall by threshold"),
        horizontal_spacing=0.1,
    )
    fig.add_trace(
        _line(curve["recall"], curve["precision"], "precision-recall", "#0072B2"), row=1, col=1
    )
    for column, colour in (("precision", "#0072B2"), ("recall", "#D55E00")):
        fig.add_trace(_line(curve["threshold"], curve[column], column, colour), row=1, col=2)
    fig.add_vline(x=threshold, line={"color": "#495057", "dash": "dot"}, row=1, col=2)
    fig.update_xaxes(title_text="recall", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="precision", range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(title_text="alert threshold", range=[0, 1], row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    _base_layout(fig, 380)
    fig.update_layout(hovermode="closest")
    return fig
