"""``ml shadow import``: the incumbent's predictions (a DataRobot batch output) beside ours."""

from __future__ import annotations

import typer

from ml.cli.app import SETTINGS, TARGET, _runtime, app, console, user_errors

shadow_app = typer.Typer(
    help="Shadow comparison with the incumbent (DataRobot) model.", no_args_is_help=True
)
app.add_typer(shadow_app, name="shadow")


@shadow_app.command("import")
@user_errors
def import_command(
    path: str = typer.Argument(..., help="DataRobot batch prediction output (CSV)."),
    deployment: str = typer.Option(..., help="The DataRobot deployment id that made it."),
    version: str | None = typer.Option(
        None, help="The incumbent's model version (default: the file's MODEL_VERSION column)."
    ),
    id_column: str = typer.Option(
        "transaction_id", help="The association id column (our transaction_id)."
    ),
    target: str | None = TARGET,
    settings_file: str | None = SETTINGS,
) -> None:
    """Append the file's predictions to scoring.predictions as model datarobot:<deployment>
    (idempotent; our champion's rows and the alert queue are untouched)."""
    from ml.operations.shadow import import_shadow_predictions

    result = import_shadow_predictions(
        _runtime(target, settings_file),
        path,
        deployment=deployment,
        version=version,
        id_column=id_column,
    )
    console.print(
        f"{result.rows_added:,} of {result.rows_read:,} predictions added as "
        f"{result.model_version} ({result.alerts:,} alerts); "
        "dbt build --select shadow_comparison_daily compares them with the champion",
        highlight=False,
    )
    if result.unknown_transactions:
        console.print(
            f"[yellow]{result.unknown_transactions:,} ids are not in the feature table[/]",
            highlight=False,
        )
