"""The decisions over time: champion changes, the simulated drift's start, and the events chart."""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd

from ml.operations.report.data import _version_key
from ml.operations.report.figures import (
    CHAMPION_EVENTS,
    EVENT_ORDER,
    EVENT_STYLE,
    ROUTINE_EVENTS,
    _base_layout,
    _mark_drifts,
)


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
            details = (
                json.loads(row["details"])
                if isinstance(row["details"], str) and row["details"]
                else {}
            )
        except json.JSONDecodeError:
            details = {}
        value = details.get("champion_version") if isinstance(details, dict) else None
        return str(value if value is not None else row["model_version"])

    changes["champion_version"] = changes.apply(champion, axis=1)
    changes["event_date"] = pd.to_datetime(changes["event_date"]).dt.normalize()
    return changes.sort_values(["event_at", "event_date"], kind="stable")[columns].reset_index(
        drop=True
    )


# --- figures ---------------------------------------------------------------------------------------


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
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        row_heights=[0.38, 0.62],
        subplot_titles=("Champion version", "Events"),
    )
    if not changes.empty:  # to the last day of the loop (its routine events included)
        end = max(
            pd.to_datetime(events["event_date"]).max().normalize(), changes["event_date"].max()
        )
        x = [*changes["event_date"], end]
        y = [*changes["champion_version"], changes["champion_version"].iloc[-1]]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[f"v{v}" for v in y],
                mode="lines+markers",
                line={"shape": "hv", "color": "#1864ab", "width": 2.5},
                marker={"size": 7},
                name="champion",
                showlegend=False,
                hovertemplate="champion %{y} from %{x|%Y-%m-%d}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        order = sorted(set(changes["champion_version"]), key=_version_key)
        fig.update_yaxes(
            categoryorder="array",
            categoryarray=[f"v{v}" for v in order],
            range=[-0.5, len(order) - 0.5],
            row=1,
            col=1,
        )
    for kind in kinds:
        rows = frame[frame["event"] == kind]
        colour, symbol = EVENT_STYLE.get(kind, ("#495057", "diamond"))
        text = [
            f"v{v or '?'}: {html.escape(str(r or ''))[:160]}"
            for v, r in zip(
                rows["model_version"].fillna(""), rows["reason"].fillna(""), strict=True
            )
        ]
        fig.add_trace(
            go.Scatter(
                x=rows["event_date"],
                y=[kind] * len(rows),
                mode="markers",
                name=kind,
                marker={
                    "color": colour,
                    "symbol": symbol,
                    "size": 11,
                    "line": {"width": 1.5, "color": colour},
                },
                text=text,
                hovertemplate="%{x|%Y-%m-%d} " + kind + " %{text}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=kinds[::-1],
        range=[-0.6, len(kinds) - 0.4],
        row=2,
        col=1,
    )
    _base_layout(fig, 200 + 34 * len(kinds) + 120)
    fig.update_layout(hovermode="closest")
    _mark_drifts(fig, list(drifts))
    return fig
