"""The 15 handbook features and our 6 extra ones in plain pandas: the reference for
gold.transaction_features.

A straightforward implementation in the style of the Fraud Detection Handbook (chapter 3.4):
``groupby(...).rolling('7D', on=...)`` per customer and per terminal, the terminal windows as the
difference of two rolling windows ((t - n - d, t] minus (t - d, t]). Point in time, like the dbt
model: a fraud counts in a terminal's risk only if it was reported at or before the transaction,
so the frauds the rolling sums count but that were reported later are subtracted (a merge of
the few late-reported frauds with the transactions of their terminal).

Same semantics as models/marts/fraud/transaction_features.sql: windows on whole seconds
(tx_epoch_s), left-open and right-closed; same-second transactions of a card ordered by
transaction_id (pandas' rolling windows end at the current row's position).

The extra features (EXTRA_FEATURES): amount / the customer window's mean, the z-score (population
std, 0 when it is 0) and max over the longest customer window, and the terminal's OTHER frauds in
(t - d days, t] reported at or before t (a merge of the fraud rows with their terminal's rows).

Used by bench/bench_foundation.py (timing) and tests/test_features_reference.py (equality).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ml.platform.settings import FEATURES  # the one list of the handbook features
from ml.platform.tables import TRANSACTION_COLUMNS

TRANSACTION_COLUMNS = list(TRANSACTION_COLUMNS)  # silver's (ml/platform/tables.py)
REPORT_COLUMNS = ["transaction_id", "reported_at"]


def compute_features(
    transactions: pd.DataFrame,
    fraud_reports: pd.DataFrame,
    customer_windows: Sequence[int] = (1, 7, 30),
    terminal_windows: Sequence[int] = (1, 7, 30),
    delay_days: int = 7,
) -> pd.DataFrame:
    """Features of every transaction, one row per transaction, ordered by transaction_id.

    ``transactions`` has the silver columns ``transaction_id, tx_datetime, tx_epoch_s,
    customer_id, terminal_id, tx_amount``; ``fraud_reports`` has ``transaction_id, reported_at``
    (reports of unknown transactions are ignored). Returns ``transaction_id``, the 15 features,
    the 6 extra ones and the label ``tx_fraud``.
    """
    df = transactions[TRANSACTION_COLUMNS].merge(
        fraud_reports[REPORT_COLUMNS], on="transaction_id", how="left"
    )
    df["tx_fraud"] = df["reported_at"].notna().astype("int32")
    # the windows' clock: whole seconds, as the SQL's tx_epoch_s
    df["t"] = pd.to_datetime(df["tx_epoch_s"], unit="s")
    df["tx_during_weekend"] = (df["tx_datetime"].dt.dayofweek >= 5).astype("int32")
    df["tx_during_night"] = (df["tx_datetime"].dt.hour <= 6).astype("int32")

    # customer spending: (t - n days, t], the current transaction included
    df = df.sort_values(["customer_id", "t", "transaction_id"], ignore_index=True)
    by_customer = df.groupby("customer_id", sort=True)
    for n in customer_windows:
        rolling = by_customer.rolling(f"{n}D", on="t")["tx_amount"]
        amount, count = rolling.sum(), rolling.count()
        _check_aligned(count, df["customer_id"])
        df[f"customer_id_nb_tx_{n}day_window"] = count.to_numpy().astype("int64")
        df[f"customer_id_avg_amount_{n}day_window"] = (amount / count).to_numpy()
        df[f"customer_id_amount_ratio_{n}day_window"] = (
            df["tx_amount"] / df[f"customer_id_avg_amount_{n}day_window"]
        )
    longest = max(customer_windows)
    rolling = by_customer.rolling(f"{longest}D", on="t")["tx_amount"]
    std = rolling.std(ddof=0).to_numpy()
    deviation = (
        df["tx_amount"].to_numpy() - df[f"customer_id_avg_amount_{longest}day_window"].to_numpy()
    )
    df[f"customer_id_amount_zscore_{longest}day_window"] = np.divide(
        deviation, std, out=np.zeros(len(df)), where=std > 0
    )
    df[f"customer_id_max_amount_{longest}day_window"] = rolling.max().to_numpy()

    # terminal risk: (t - n - d days, t - d days] = (t - n - d, t] minus (t - d, t]
    df = df.sort_values(["terminal_id", "t", "transaction_id"], ignore_index=True)
    by_terminal = df.groupby("terminal_id", sort=True)
    rolled = {}
    for days in sorted({delay_days, *(n + delay_days for n in terminal_windows)}):
        rolling = by_terminal.rolling(f"{days}D", on="t")["tx_fraud"]
        frauds, count = rolling.sum(), rolling.count()
        _check_aligned(count, df["terminal_id"])
        rolled[days] = (count.to_numpy(), frauds.to_numpy())
    reported_later = _frauds_reported_later(df, terminal_windows, delay_days)
    for n in terminal_windows:
        count = rolled[n + delay_days][0] - rolled[delay_days][0]
        frauds = rolled[n + delay_days][1] - rolled[delay_days][1] - reported_later[n]
        df[f"terminal_id_nb_tx_{n}day_window"] = count.astype("int64")
        df[f"terminal_id_risk_{n}day_window"] = np.divide(
            frauds, count, out=np.zeros(len(df)), where=count > 0
        )

    df[f"terminal_id_reported_frauds_{delay_days}day_window"] = _reported_frauds(df, delay_days)

    columns = [
        "transaction_id",
        *feature_columns(customer_windows, terminal_windows),
        *extra_feature_columns(customer_windows, delay_days),
        "tx_fraud",
    ]
    return df.sort_values("transaction_id", ignore_index=True)[columns]


def feature_columns(
    customer_windows: Sequence[int] = (1, 7, 30), terminal_windows: Sequence[int] = (1, 7, 30)
) -> list[str]:
    """The handbook's feature names for the given window sizes (FEATURES for the defaults)."""
    columns = ["tx_amount", "tx_during_weekend", "tx_during_night"]
    for n in customer_windows:
        columns += [f"customer_id_nb_tx_{n}day_window", f"customer_id_avg_amount_{n}day_window"]
    for n in terminal_windows:
        columns += [f"terminal_id_nb_tx_{n}day_window", f"terminal_id_risk_{n}day_window"]
    return columns


def extra_feature_columns(
    customer_windows: Sequence[int] = (1, 7, 30), delay_days: int = 7
) -> list[str]:
    """Our extra feature names for the given windows (EXTRA_FEATURES for the defaults)."""
    longest = max(customer_windows)
    return [
        *(f"customer_id_amount_ratio_{n}day_window" for n in customer_windows),
        f"customer_id_amount_zscore_{longest}day_window",
        f"customer_id_max_amount_{longest}day_window",
        f"terminal_id_reported_frauds_{delay_days}day_window",
    ]


def _reported_frauds(df: pd.DataFrame, delay_days: int) -> np.ndarray:
    """Per row of ``df``: the other frauds of its terminal in (t - d days, t] (same-second ones
    with a higher transaction_id excluded) reported at or before the transaction."""
    frauds = df.loc[df["tx_fraud"] == 1, ["terminal_id", "transaction_id", "t", "reported_at"]]
    frauds = frauds.rename(columns={"transaction_id": "fraud_id", "t": "fraud_t"})
    rows = df[["terminal_id", "transaction_id", "t", "tx_datetime"]].reset_index(names="row")
    pairs = frauds.merge(rows, on="terminal_id")
    pairs = pairs[
        (pairs["fraud_t"] > pairs["t"] - pd.Timedelta(days=delay_days))
        & (
            (pairs["fraud_t"] < pairs["t"])
            | ((pairs["fraud_t"] == pairs["t"]) & (pairs["fraud_id"] < pairs["transaction_id"]))
        )
        & (pairs["reported_at"] <= pairs["tx_datetime"])
    ]
    return np.bincount(pairs["row"].to_numpy(), minlength=len(df)).astype("int64")


def project_windows(project_dir: Path | str) -> tuple[list[int], list[int], int]:
    """The dbt vars customer_windows_days, terminal_windows_days and terminal_delay_days."""
    project = yaml.safe_load((Path(project_dir) / "dbt_project.yml").read_text())
    dbt_vars = project["vars"]
    return (
        [int(n) for n in dbt_vars["customer_windows_days"]],
        [int(n) for n in dbt_vars["terminal_windows_days"]],
        int(dbt_vars["terminal_delay_days"]),
    )


def _check_aligned(rolled: pd.Series, keys: pd.Series) -> None:
    """groupby-rolling returns the groups in key order; the frame is sorted the same way."""
    if not np.array_equal(rolled.index.get_level_values(0).to_numpy(), keys.to_numpy()):
        raise AssertionError("rolling result is not aligned with the sorted frame")


def _frauds_reported_later(
    df: pd.DataFrame, terminal_windows: Sequence[int], delay_days: int
) -> dict[int, np.ndarray]:
    """Per terminal window: frauds in the window of each row (in ``df``'s order) reported after it.

    Only a fraud reported more than ``delay_days`` after it happened can be in a window ending
    ``delay_days`` before a transaction and still be unknown at that transaction.
    """
    delay = pd.Timedelta(days=delay_days)
    frauds = df.loc[df["tx_fraud"] == 1, ["terminal_id", "t", "reported_at"]]
    late = frauds[frauds["reported_at"] > frauds["t"] + delay]
    late = late.rename(columns={"t": "fraud_t"})
    rows = df[["terminal_id", "t", "tx_datetime"]].reset_index(names="row")
    pairs = late.merge(rows, on="terminal_id")
    longest = pd.Timedelta(days=max(terminal_windows) + delay_days)
    pairs = pairs[
        (pairs["fraud_t"] > pairs["t"] - longest)
        & (pairs["fraud_t"] <= pairs["t"] - delay)
        & (pairs["reported_at"] > pairs["tx_datetime"])
    ]
    result = {}
    for n in terminal_windows:
        inside = pairs[pairs["fraud_t"] > pairs["t"] - pd.Timedelta(days=n + delay_days)]
        result[n] = np.bincount(inside["row"].to_numpy(), minlength=len(df)).astype("float64")
    return result


@dataclass
class Comparison:
    """Outcome of :func:`compare`: rows compared and, per differing column, rows that differ."""

    rows: int
    mismatches: dict[str, int]
    examples: pd.DataFrame

    @property
    def equal(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        if self.equal:
            return f"identical on {self.rows:,} rows (counts equal, floats within 1e-9)"
        details = ", ".join(f"{column}: {n:,}" for column, n in self.mismatches.items())
        return f"DIFFERENT on {self.rows:,} rows ({details})"


def compare(
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    columns: Sequence[str] = FEATURES,
    tolerance: float = 1e-9,
) -> Comparison:
    """Compare two feature tables on ``transaction_id``: integers exactly, floats within
    ``tolerance`` (absolute, or relative to the expected value when that is larger than 1);
    missing values (NaN, NaT, None) on both sides are equal.

    Rows present in only one table count as mismatches of the pseudo-column ``transaction_id``.
    """
    merged = actual[["transaction_id", *columns]].merge(
        expected[["transaction_id", *columns]],
        on="transaction_id",
        how="outer",
        suffixes=("_actual", "_expected"),
        indicator=True,
    )
    mismatches: dict[str, int] = {}
    bad_rows = merged["_merge"] != "both"
    if bad_rows.any():
        mismatches["transaction_id"] = int(bad_rows.sum())
    both = merged[~bad_rows]
    for column in columns:
        got = both[f"{column}_actual"].to_numpy()
        want = both[f"{column}_expected"].to_numpy()
        if np.issubdtype(want.dtype, np.floating) or np.issubdtype(got.dtype, np.floating):
            got, want = got.astype("float64"), want.astype("float64")
            scale = np.maximum(1.0, np.abs(want))
            differs = ~(np.abs(got - want) <= tolerance * scale) & ~(np.isnan(got) & np.isnan(want))
        else:
            differs = ~((got == want) | (pd.isna(got) & pd.isna(want)))
        if differs.any():
            mismatches[column] = int(differs.sum())
            bad_rows = bad_rows | merged.index.isin(both.index[differs])
    return Comparison(rows=len(merged), mismatches=mismatches, examples=merged[bad_rows].head(10))
