"""``ml report``: the state of the fraud model in one self-contained HTML file.

One file that opens offline (plotly.js, CSS and data are inline; nothing is fetched), with:

1. **Model performance** — daily average precision and Card Precision@k on matured labels, one
   line per model version, promotions marked (``gold.model_performance_daily``);
2. **Alerts per day** — alerts raised by each model version, and how many of them are frauds by
   the labels known so far (``gold.latest_predictions`` joined to ``gold.transaction_features``;
   else ``gold.fraud_alerts``);
3. **Feature drift** — a feature x day heatmap of the population stability index against the
   scoring model's training reference (``gold.feature_drift_daily``);
4. **Champion history and retraining decisions** — from ``scoring.model_events`` (written by
   ``ml replay``): champion version over time and every trained / validated / rejected / promoted /
   drift_alert / rolled_back event;
5. **Model registry** — the MLflow aliases champion / challenger / previous_champion, if the
   registry is reachable.

Everything is read through the runtime's warehouse (read-only). A missing or empty
table does not fail the report: its section says what is missing and which command fills it.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from ml.operations.report.data import ReportData, load_report_data
from ml.operations.report.sections import Section, build_sections
from ml.platform.errors import ConfigError, FraudopsError
from ml.platform.runtime import Runtime

DEFAULT_OUTPUT = Path("reports/fraudops-report.html")
TEMPLATE = "report.html.j2"
PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}


class ReportError(FraudopsError):
    """The report cannot be written."""


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote."""

    path: Path
    size_bytes: int
    charts: int
    sections: list[tuple[str, str]]  # (title, "chart" | "table" | the note)


def render_html(
    sections: list[Section],
    headline: list[tuple[str, str, str]],
    data: ReportData,
    generated_at: dt.datetime,
) -> str:
    """The whole report as one HTML document (plotly.js inline, once)."""
    import jinja2
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ml.operations.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    charts = {
        s.key: pio.to_html(
            s.figure,
            full_html=False,
            include_plotlyjs=False,
            config=PLOT_CONFIG,
            div_id=f"chart-{s.key}-{uuid.uuid4().hex[:8]}",
            default_height=f"{s.figure.layout.height}px",
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
    rt: Runtime, output: Path | str = DEFAULT_OUTPUT, include_registry: bool = True
) -> ReportResult:
    """Read the warehouse (and the registry), build the report and write it to ``output``."""
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--output {output} must end with .html")
    data = load_report_data(rt, include_registry=include_registry)
    sections, headline = build_sections(data, rt.settings)
    document = render_html(sections, headline, data, dt.datetime.now(dt.UTC))
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(document, encoding="utf-8")
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(
            f"cannot write the report {output}: {exc.strerror or exc}; choose another --output"
        ) from None
    return ReportResult(
        path=output,
        size_bytes=output.stat().st_size,
        charts=sum(s.has_chart for s in sections),
        sections=[
            (s.title, "chart" if s.has_chart else "table" if s.table_rows else (s.note or ""))
            for s in sections
        ],
    )
