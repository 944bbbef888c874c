"""``ml train``, ``evaluate``, ``validate``, ``promote``, ``rollback``, ``score``: the model lifecycle."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import typer

from ml.cli.app import (
    SETTINGS,
    TARGET,
    _date,
    _runtime,
    app,
    batch_gc,
    console,
    date_option,
    user_errors,
)

# --- ml train / ml evaluate --------------------------------------------------------------------


def _training_runtime(
    test_end: _dt.datetime | None,
    train_days: int | None,
    delay_days: int | None,
    test_days: int | None,
    candidates: list[str] | None,
    target: str | None,
    folds: int | None = None,
    settings_file: str | None = None,
) -> Any:
    """The runtime with the window/candidate options of `ml train` / `ml evaluate` as overrides
    of the ``training`` settings (the one path windows take)."""
    training = {
        "test_end": test_end.date() if test_end is not None else None,
        "train_days": train_days,
        "delay_days": delay_days,
        "test_days": test_days,
        "candidates": candidates or None,
        "prequential_folds": folds,
    }
    return _runtime(
        target, settings_file, training={k: v for k, v in training.items() if v is not None}
    )


_TEST_END = date_option("Last test day (default: last day with mature labels).")
_TRAIN_DAYS = typer.Option(None, min=1, help="Days of training data (settings default: 7).")
_DELAY_DAYS = typer.Option(
    None, min=0, help="Label-delay gap between training and test (default: 7)."
)
_TEST_DAYS = typer.Option(None, min=1, help="Days of test data (settings default: 7).")
_CANDIDATES = typer.Option(
    None, "--candidate", help="Candidate to train (repeatable; default: training.candidates)."
)


@app.command("train")
@user_errors
def train_command(
    test_end: _dt.datetime | None = _TEST_END,
    train_days: int | None = _TRAIN_DAYS,
    delay_days: int | None = _DELAY_DAYS,
    test_days: int | None = _TEST_DAYS,
    candidates: list[str] | None = _CANDIDATES,
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Train the candidates, log them to MLflow and register the best as the challenger."""
    from rich.table import Table

    from ml.lifecycle.train import train

    rt = _training_runtime(
        test_end, train_days, delay_days, test_days, candidates, target, None, settings_file
    )
    settings = rt.settings
    result = train(rt)

    w = result.windows
    console.print(
        f"train {w.train_start}..{w.train_end} ({result.train_rows:,} tx), "
        f"test {w.test_start}..{w.test_end} ({result.test_rows:,} tx)",
        highlight=False,
    )
    table = Table(title="ml train — test metrics (* registered)", title_justify="left")
    k = settings.model.top_k_cards
    rows = {
        "ROC AUC": ("roc_auc", "{:.3f}"),
        "average precision": ("average_precision", "{:.3f}"),
        f"card precision@{k}": (f"card_precision_at_{k}", "{:.3f}"),
        "precision at threshold": ("precision_at_threshold", "{:.3f}"),
        "recall at threshold": ("recall_at_threshold", "{:.3f}"),
        "alerts per day": ("alerts_per_day", "{:,.1f}"),
        "fraud amount caught": ("fraud_amount_caught", "{:,.0f}"),
    }
    table.add_column("metric", style="bold")
    for candidate in result.candidates:
        mark = " *" if candidate.name == result.best_candidate else ""
        table.add_column(candidate.name + mark, justify="right", no_wrap=True)
    for label, (key, fmt) in rows.items():
        table.add_row(label, *(fmt.format(c.metrics[key]) for c in result.candidates))
    console.print(table)
    console.print(
        f"registered [bold]{result.model_name}[/] version [bold]{result.model_version}[/] "
        f"({result.best_candidate}) with alias [bold]challenger[/]; MLflow run {result.run_id}",
        soft_wrap=True,
        highlight=False,
    )


@app.command("evaluate")
@user_errors
def evaluate_command(
    protocol: str = typer.Option("prequential", help="Evaluation protocol (prequential)."),
    folds: int | None = typer.Option(None, min=1, help="Number of folds (settings default: 4)."),
    test_end: _dt.datetime | None = _TEST_END,
    train_days: int | None = _TRAIN_DAYS,
    delay_days: int | None = _DELAY_DAYS,
    test_days: int | None = _TEST_DAYS,
    candidates: list[str] | None = _CANDIDATES,
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Estimate each candidate's performance and its spread over time (prequential folds)."""
    from rich.table import Table

    from ml.lifecycle.evaluate import evaluate

    rt = _training_runtime(
        test_end, train_days, delay_days, test_days, candidates, target, folds, settings_file
    )
    result = evaluate(rt, protocol)

    first, last = result.windows[-1], result.windows[0]
    table = Table(
        title=f"ml evaluate — {protocol}, {len(result.windows)} folds, "
        f"tests {first.test_start}..{last.test_end}",
        title_justify="left",
    )
    table.add_column("candidate", style="bold")
    headers = {"roc_auc": "ROC AUC", "average_precision": "avg precision"}
    for metric in result.metric_names:
        table.add_column(
            headers.get(metric, metric.replace("card_precision_at_", "card prec.@")),
            justify="right",
        )
    for candidate in result.summary.index:
        cells = []
        for metric in result.metric_names:
            mean, std = result.mean_std(candidate, metric)
            cells.append(f"{mean:.3f} ± {std:.3f}")
        table.add_row(candidate, *cells)
    console.print(table)
    if result.run_id:
        console.print(f"MLflow run {result.run_id}", highlight=False)


# --- ml validate / ml promote / ml rollback / ml score ---------------------------------------
_VALIDATION_END = date_option(
    "Last day of the validation window (default: last day with mature labels)."
)
_SCORE_START = date_option("First tx_date to score.")
_SCORE_END = date_option("Last tx_date to score.")


@app.command("validate")
@user_errors
def validate_command(
    test_end: _dt.datetime | None = _VALIDATION_END,
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Compare @challenger with @champion on the latest mature test window; exit 2 if it fails."""
    from rich.table import Table

    from ml.lifecycle.validate import validate
    from ml.platform.errors import ValidationFailed

    rt = _runtime(
        target, settings_file, validation={"test_end": _date(test_end)} if test_end else {}
    )
    settings = rt.settings
    report = validate(rt)

    w = report.windows
    against = f"v{report.champion_version} (champion)" if report.champion_version else "no champion"
    k = settings.model.top_k_cards
    models = Table(
        title=f"ml validate — {report.model_name} v{report.challenger_version} (challenger) vs {against}, "
        f"test {w.test_start}..{w.test_end} ({report.test_rows:,} tx, {report.test_frauds:,} frauds)",
        title_justify="left",
    )
    models.add_column("model", style="bold")
    metric_names = {
        "ROC AUC": "roc_auc",
        "avg precision": "average_precision",
        f"card prec.@{k}": f"card_precision_at_{k}",
    }
    for header in metric_names:
        models.add_column(header, justify="right")
    for label, values in (
        ("challenger", report.challenger_metrics),
        ("champion", report.champion_metrics),
    ):
        if values is not None:
            models.add_row(label, *(f"{values[key]:.3f}" for key in metric_names.values()))
    console.print(models)

    rules = Table(title="rules", title_justify="left")
    for column, justify in (
        ("rule", "left"),
        ("value", "right"),
        ("", "center"),
        ("threshold", "right"),
        ("result", "left"),
    ):
        rules.add_column(column, justify=justify)
    for rule in report.rules:
        result = "[green]pass[/]" if rule.passed else "[bold red]FAIL[/]"
        rules.add_row(
            rule.name, f"{rule.value:.4f}", rule.comparison, f"{rule.threshold:g}", result
        )
    console.print(rules)
    console.print(
        f"verdict written to {report.model_name} v{report.challenger_version} (tag validation_status="
        f"{report.status}) and MLflow run {report.run_id}",
        soft_wrap=True,
        highlight=False,
    )
    if not report.passed:
        raise ValidationFailed(report.summary())
    console.print("[bold green]passed[/]: promote it with [bold]ml promote[/]", highlight=False)


@app.command("promote")
@user_errors
def promote_command(
    version: str | None = typer.Option(None, help="Version to promote (default: the @challenger)."),
    force: bool = typer.Option(
        False,
        "--force",
        metavar="",  # a flag: typer would show it as `--force <bool>`, and `--force true` fails
        help="Promote even if not validated (needs --reason).",
    ),
    reason: str | None = typer.Option(None, help="Why (recorded on the version and in MLflow)."),
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Move alias champion to the validated challenger; the old champion becomes previous_champion."""
    from ml.lifecycle.promote import promote
    from ml.platform.tables import FEATURE_REFERENCE

    change = promote(
        _runtime(target, settings_file),
        version=version,
        force=force,
        reason=reason,
        require_card=True,
    )
    replaced = (
        f"v{change.replaced_version} is now previous_champion"
        if change.replaced_version
        else "first champion"
    )
    forced = " [bold yellow](forced)[/]" if change.forced else ""
    console.print(
        f"[bold]{change.model_name}@champion[/] = v{change.champion_version}{forced} ({replaced}); "
        f"by {change.user}: {change.reason}; MLflow run {change.run_id}",
        soft_wrap=True,
        highlight=False,
    )
    if any(change.reference_rows_added):
        console.print(
            f"wrote its training reference to {FEATURE_REFERENCE} "
            f"({change.reference_rows_added[0]} bins, {change.reference_rows_added[1]} sample rows)",
            highlight=False,
        )


@app.command("rollback")
@user_errors
def rollback_command(
    reason: str = typer.Option(..., help="Why the champion is withdrawn (recorded)."),
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Move alias champion back to previous_champion."""
    from ml.lifecycle.promote import rollback

    change = rollback(_runtime(target, settings_file), reason=reason)
    previous = (
        f"v{change.previous_champion_version}" if change.previous_champion_version else "none"
    )
    console.print(
        f"[bold]{change.model_name}@champion[/] = v{change.champion_version} (rolled back from "
        f"v{change.replaced_version}; previous_champion: {previous}); by {change.user}: {change.reason}; "
        f"MLflow run {change.run_id}",
        soft_wrap=True,
        highlight=False,
    )


@app.command("score")
@user_errors
@batch_gc
def score_command(
    start: _dt.datetime | None = _SCORE_START,
    end: _dt.datetime | None = _SCORE_END,
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Score every gold transaction the @champion has not scored yet into scoring.predictions."""
    from rich.table import Table

    from ml.lifecycle.score import score
    from ml.platform.tables import PREDICTION_EXPLANATIONS, PREDICTIONS

    rt = _runtime(target, settings_file)
    result = score(rt, start=_date(start), end=_date(end))
    if result.rows_read == 0 and (start or end):
        console.print(
            nothing_to_score(rt, _date(start), _date(end), result), highlight=False, soft_wrap=True
        )

    table = Table(
        title=f"ml score — {result.model_name} v{result.model_version} (champion)",
        show_header=False,
        title_justify="left",
    )
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("transactions not scored yet", f"{result.rows_read:,}")
    table.add_row("predictions written", f"{result.rows_added:,} to {PREDICTIONS}")
    table.add_row(f"alerts (score >= {result.alert_threshold:g})", f"{result.alerts:,}")
    table.add_row(
        "reasons written (top 3 per alert)",
        f"{result.explanations_added:,} to {PREDICTION_EXPLANATIONS}",
    )
    phases = [p for p in ("registry", "read", "predict", "explain", "write") if p in result.seconds]
    table.add_row(
        "seconds (" + " + ".join(phases) + ")",
        " + ".join(f"{result.seconds[p]:.2f}" for p in phases),
    )
    table.add_row("rows/s", f"{result.rows_per_second:,.0f}")
    console.print(table)


def nothing_to_score(rt: Any, start: Any, end: Any, result: Any) -> str:
    """Why a dated ``ml score`` wrote nothing: outside the gold days, or scored already."""
    from ml.lifecycle.data import table_date_range

    with rt.warehouse(read_only=True) as wh:
        first, last = table_date_range(wh, rt.settings)
    asked = f"{start or first}..{end or last}"
    if (start and start > last) or (end and end < first):
        return (
            f"[yellow]nothing scored[/]: {asked} is outside the days of {rt.settings.model.feature_table} "
            f"({first}..{last}); choose --start/--end inside them"
        )
    return (
        f"nothing scored: every transaction of {asked} is scored by v{result.model_version} already"
    )


@app.command("model-card")
@user_errors
def model_card_command(
    version: str = typer.Option(..., help="Registered version to document."),
    output: str | None = typer.Option(
        None, help="HTML file (default: model_card_<name>_v<N>.html)."
    ),
    log: bool = typer.Option(
        True,
        "--log/--no-log",
        help="Log it to the version's run and link it (ml promote needs it).",
    ),
    target: str | None = TARGET,
    settings_file: str | None = SETTINGS,
) -> None:
    """Write the model card of a version (SR 11-7 sections, one self-contained HTML file)."""
    from ml.lifecycle.model_card_render import write_model_card

    rt = _runtime(target, settings_file)
    result = write_model_card(rt, version, output, log=log)
    logged = f"; logged as {result.artifact_uri}" if result.artifact_uri else ""
    console.print(
        f"model card of {rt.model_name} v{version}: {result.sections} sections{logged}",
        highlight=False,
    )
    print(result.path)
