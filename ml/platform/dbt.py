"""Run dbt from Python (the ``ml`` pipeline, tests and benchmarks) in a subprocess.

A subprocess keeps dbt's global state and the warehouse connection out of the caller's process
(DuckDB allows one writer per file). ``run_dbt`` returns the parsed ``run_results.json``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.platform.errors import FraudopsError


class DbtError(FraudopsError):
    """A dbt command failed; the message is dbt's first error line."""


@dataclass
class DbtResult:
    args: list[str]
    returncode: int
    stdout: str
    run_results: dict[str, Any] | None = field(default=None)

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """Results by unique_id (status, execution_time, adapter_response...)."""
        if not self.run_results:
            return {}
        return {r["unique_id"]: r for r in self.run_results.get("results", [])}

    def timing(self, name: str) -> float:
        """Execution time in seconds of the model/test whose unique_id ends with ``.name``."""
        for unique_id, result in self.nodes.items():
            if unique_id.endswith(f".{name}"):
                return float(result["execution_time"])
        raise KeyError(name)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?\s+")


def _clean(line: str) -> str:
    """Drop colour codes and dbt's leading HH:MM:SS timestamp."""
    return _TIMESTAMP.sub("", _ANSI.sub("", line)).strip()


def _first_error_line(output: str) -> str:
    lines = [_clean(line) for line in output.splitlines() if _clean(line)]
    markers = (
        "Runtime Error",
        "Compilation Error",
        "Database Error",
        "Parsing Error",
        "Error in",
        "error:",
    )
    for i, line in enumerate(lines):
        if any(m in line for m in markers):
            # dbt prints the header line, then the detail on the next lines
            detail = [
                entry
                for entry in lines[i + 1 : i + 4]
                if not entry.startswith(("compiled code", "compiled Code"))
            ]
            return " ".join([line, *detail])[:500]
    failing = [line for line in lines if "ERROR" in line or "FAIL" in line]
    return (failing[0] if failing else (lines[-1] if lines else "dbt failed without output"))[:500]


def run_dbt(
    args: list[str],
    *,
    project_dir: Path | str = ".",
    profiles_dir: Path | str | None = None,
    target: str | None = None,
    target_path: Path | str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    stream: bool = False,
) -> DbtResult:
    """Run ``dbt <args>`` for the fraudops project; raise DbtError (one line) when ``check``."""
    project_dir = Path(project_dir).resolve()
    cmd = [sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args]
    cmd += [
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(Path(profiles_dir or project_dir).resolve()),
    ]
    if target:
        cmd += ["--target", target]
    # like dbt: --target-path, else DBT_TARGET_PATH, else the project's target/
    target_path = (
        target_path or (env or {}).get("DBT_TARGET_PATH") or os.environ.get("DBT_TARGET_PATH")
    )
    target_dir = Path(target_path).resolve() if target_path else project_dir / "target"
    cmd += ["--target-path", str(target_dir)]
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    proc = subprocess.run(
        cmd,
        cwd=project_dir,
        env=full_env,
        text=True,
        stdout=None if stream else subprocess.PIPE,
        stderr=subprocess.STDOUT if not stream else None,
        check=False,  # the exit code is handled below, with dbt's own error line
    )
    stdout = proc.stdout or ""
    results_file = target_dir / "run_results.json"
    run_results = json.loads(results_file.read_text()) if results_file.exists() else None
    result = DbtResult(
        args=args, returncode=proc.returncode, stdout=stdout, run_results=run_results
    )
    if check and proc.returncode != 0:
        raise DbtError(f"dbt {' '.join(args[:1])} failed: {_first_error_line(stdout)}")
    return result
