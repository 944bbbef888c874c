"""``ml serve``: real-time scoring over HTTP (ml/serving)."""

from __future__ import annotations

import typer

from ml.cli.app import SETTINGS, TARGET, _runtime, app, console, user_errors


@app.command("serve")
@user_errors
def serve_command(
    host: str | None = typer.Option(None, help="Interface to bind (default: serving.host)."),
    port: int | None = typer.Option(None, help="Port (default: serving.port)."),
    target: str | None = TARGET,
    settings_file: str | None = SETTINGS,
) -> None:
    """Serve models:/<name>@champion on raw transactions (POST /invocations), with online
    features bootstrapped from the warehouse; follows the champion alias until stopped."""
    import logging

    from ml.serving.server import preflight, serve

    rt = _runtime(target, settings_file)
    serving = rt.settings.serving
    host = host or serving.host
    port = port or serving.port
    version = preflight(rt)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    console.print(
        f"serving {rt.model_name}@champion (v{version}) on http://{host}:{port} "
        f"(inference log: {serving.log_dir}); /health is 200 once the state is loaded",
        highlight=False,
        soft_wrap=True,
    )
    serve(rt, host, port)
