"""Lineage of runs and model versions: the project's git commit and the dbt invocation that
last built the warehouse (``target/run_results.json``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ml.platform.settings import Settings

FEATURE_TABLE_MODEL = "transaction_features"


def git_commit(project_dir: Path | str) -> dict[str, str]:
    """``git_commit`` (HEAD) and ``git_dirty`` of the repository holding ``project_dir``; {} outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return {}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return {
        "git_commit": head.stdout.strip(),
        "git_dirty": str(bool(status.stdout.strip())).lower(),
    }


def dbt_invocation(settings: Settings, target_path: Path) -> dict[str, str]:
    """Tags naming the dbt invocation that wrote ``run_results.json`` ({} if there is none).

    ``dbt_invocation_id`` and ``dbt_generated_at`` come from the file's metadata;
    ``dbt_built_feature_table`` says whether that invocation (re)built the feature table.
    """
    results_file = Path(target_path) / "run_results.json"
    try:
        results = json.loads(results_file.read_text())
    except (OSError, ValueError):
        return {}
    metadata = results.get("metadata", {})
    if not metadata.get("invocation_id"):
        return {}
    table = settings.model.feature_table.split(".")[-1] or FEATURE_TABLE_MODEL
    built = any(
        r.get("unique_id", "").startswith("model.")
        and r["unique_id"].endswith(f".{table}")
        and r.get("status") == "success"
        for r in results.get("results", [])
    )
    return {
        "dbt_invocation_id": str(metadata["invocation_id"]),
        "dbt_generated_at": str(metadata.get("generated_at", "")),
        "dbt_built_feature_table": str(built).lower(),
    }


def lineage_tags(settings: Settings, dbt_target: Path) -> dict[str, str]:
    """Git commit + dbt invocation tags for a run or model version."""
    return {**git_commit(settings.dbt.project_dir), **dbt_invocation(settings, dbt_target)}
