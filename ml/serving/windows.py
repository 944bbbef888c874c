"""The feature windows of the dbt project, read once from it (never typed twice).

The window sizes and the terminal delay are the dbt vars ``customer_windows_days``,
``terminal_windows_days`` and ``terminal_delay_days`` (dbt_project.yml); the look-back (how
many days of history a transaction's features read, 37 with the handbook's vars) is what the
macro ``feature_lookback_days()`` (macros/feature_lookback_days.sql) returns for those vars:
the macro itself is evaluated here with jinja, so the online state keeps exactly the history
the incremental dbt build reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ml.platform.runtime import dbt_vars
from ml.platform.settings import Settings

SECONDS_PER_DAY = 86_400
LOOKBACK_MACRO = Path("macros") / "feature_lookback_days.sql"


class _Returned(Exception):
    """Carries the value of dbt's return() out of a rendering macro."""

    def __init__(self, value: Any):
        self.value = value


def _dbt_return(value: Any) -> None:
    """dbt's ``return()`` in a macro: stop rendering and hand ``value`` to the caller."""
    raise _Returned(value)


def render_macro(project_dir: Path, macro_file: Path, name: str, dbt_vars: dict[str, Any]) -> Any:
    """Call the jinja macro ``name`` of ``macro_file`` with dbt's ``var()`` and ``return()``."""
    source = (project_dir / macro_file).read_text()
    template = jinja2.Environment(extensions=["jinja2.ext.do"]).from_string(source)
    module = template.make_module({"var": lambda key: dbt_vars[key], "return": _dbt_return})
    try:
        rendered = getattr(module, name)()
    except _Returned as returned:
        return returned.value
    return rendered.strip()


@dataclass(frozen=True)
class FeatureWindows:
    """Window sizes in days, the terminal delay and the look-back of the feature SQL."""

    customer_days: tuple[int, ...]
    terminal_days: tuple[int, ...]
    delay_days: int
    lookback_days: int

    def __post_init__(self) -> None:
        if self.delay_days < 1:
            raise ValueError(f"the terminal delay must be at least 1 day (got {self.delay_days})")
        needed = max(max(self.customer_days), max(self.terminal_days) + self.delay_days)
        if self.lookback_days < needed:
            raise ValueError(
                f"a look-back of {self.lookback_days} days misses history ({needed} needed)"
            )

    @classmethod
    def from_dbt_project(cls, project_dir: Path | str = ".", **overrides: Any) -> FeatureWindows:
        """The vars of ``project_dir``/dbt_project.yml (``overrides`` replace some, as
        ``dbt --vars`` would), and the look-back the dbt macro computes from them."""
        project_dir = Path(project_dir)
        dbt_vars = dict(yaml.safe_load((project_dir / "dbt_project.yml").read_text())["vars"])
        dbt_vars.update(overrides)
        lookback = render_macro(project_dir, LOOKBACK_MACRO, "feature_lookback_days", dbt_vars)
        return cls(
            customer_days=tuple(int(n) for n in dbt_vars["customer_windows_days"]),
            terminal_days=tuple(int(n) for n in dbt_vars["terminal_windows_days"]),
            delay_days=int(dbt_vars["terminal_delay_days"]),
            lookback_days=int(lookback),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureWindows:
        """The windows of ``settings.features`` (the source of the dbt vars ml passes), with the
        look-back the dbt macro computes for them."""
        return cls.from_dbt_project(settings.dbt.project_dir, **dbt_vars(settings))

    @property
    def longest_customer_days(self) -> int:
        return max(self.customer_days)

    def feature_columns(self) -> tuple[str, ...]:
        """The handbook's features, named as in the gold table (ml.settings.FEATURES)."""
        columns = ["tx_amount", "tx_during_weekend", "tx_during_night"]
        for n in self.customer_days:
            columns += [f"customer_id_nb_tx_{n}day_window", f"customer_id_avg_amount_{n}day_window"]
        for n in self.terminal_days:
            columns += [f"terminal_id_nb_tx_{n}day_window", f"terminal_id_risk_{n}day_window"]
        return tuple(columns)

    def extra_feature_columns(self) -> tuple[str, ...]:
        """Our extra features, named as in the gold table (ml.settings.EXTRA_FEATURES)."""
        longest = self.longest_customer_days
        return (
            *(f"customer_id_amount_ratio_{n}day_window" for n in self.customer_days),
            f"customer_id_amount_zscore_{longest}day_window",
            f"customer_id_max_amount_{longest}day_window",
            f"terminal_id_reported_frauds_{self.delay_days}day_window",
        )

    def columns(self) -> tuple[str, ...]:
        """Every output column, in the order of FeatureBatch.values."""
        return (*self.feature_columns(), *self.extra_feature_columns())
