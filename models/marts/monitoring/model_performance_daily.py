"""Daily performance of each scoring model version, once the day's labels are mature.

One row per (transaction day, model name, model version). A day is mature when it is at least
``label_maturity_days`` before the latest transaction day in gold.transaction_features (the
same rule as ``ml.data.last_mature_day``); its label is ``tx_fraud`` as of this build.

Metrics (Fraud Detection Handbook, chapter 4), all from ``sklearn.metrics``:

* ``roc_auc`` and ``average_precision`` over the day's scored transactions (null when the day
  has only one class);
* ``card_precision_at_k``: each card's (customer's) highest score of the day; the ``k`` cards
  with the highest score are the alerts; precision = fraudulent cards among them / ``k``.
  On a single day the handbook's removal of cards already detected on earlier days is not
  applied (it needs the whole evaluation period), so values are comparable across days but can
  be higher than a multi-day Card Precision@k from ``ml evaluate``;
* ``precision_at_threshold`` / ``recall_at_threshold``: of the model's own ``is_alert`` flag
  (null when there are no alerts / no frauds).

Portable: the same file runs on dbt-duckdb (``dbt.ref``/``dbt.source`` give DuckDB relations)
and dbt-databricks / dbt-spark (PySpark DataFrames). Joins, filters and aggregations go through
narwhals, so they run in the engine; only aggregates reach pandas: counts per (day, version,
distinct score, alert flag) - from which sklearn's weighted ROC AUC / average precision /
precision / recall equal the per-transaction values exactly - and each card's best score per
day. Project packages (``ml``) are not imported: on Databricks they are not installed on the
cluster, so the helpers live in this file.

Incremental: a (day, model version) is (re)computed when it has no row yet, or when it has
predictions scored after its row was computed (``last_scored_at``).
"""

from __future__ import annotations

import datetime as dt

import narwhals as nw
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

MODEL_NAME = "model_performance_daily"
GROUP = ["tx_date", "model_name", "model_version"]

#: Output columns and their SQL types (spelled alike in DuckDB and Spark SQL).
OUTPUT_SCHEMA: dict[str, str] = {
    "tx_date": "date",
    "model_name": "string",
    "model_version": "string",
    "n_transactions": "bigint",
    "n_frauds": "bigint",
    "n_cards": "bigint",
    "n_alerts": "bigint",
    "roc_auc": "double",
    "average_precision": "double",
    "card_precision_k": "int",
    "card_precision_at_k": "double",
    "precision_at_threshold": "double",
    "recall_at_threshold": "double",
    "labels_as_of": "date",
    "last_scored_at": "timestamp",
}


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        unique_key=["tx_date", "model_name", "model_version"],  # = GROUP (dbt needs a literal)
        packages=["narwhals", "scikit-learn", "numpy", "pandas"],
    )
    maturity_days = int(dbt.config.meta_get("label_maturity_days", 7))
    k = int(dbt.config.meta_get("card_precision_k", 100))

    predictions = nw.from_native(dbt.source("scoring", "predictions"))
    features = nw.from_native(dbt.ref("transaction_features"))
    done = None
    if dbt.is_incremental:
        done = nw.from_native(
            session.sql(
                f"select tx_date, model_name, model_version, last_scored_at as done_scored_at from {dbt.this}"
            )
        )
    frame = performance_daily(predictions, features, maturity_days=maturity_days, k=k, done=done)
    return to_engine(frame, like=predictions, session=session)


def performance_daily(
    predictions: nw.LazyFrame,
    features: nw.LazyFrame,
    *,
    maturity_days: int,
    k: int,
    done: nw.LazyFrame | None = None,
) -> pd.DataFrame:
    """The model's rows for the mature (day, version) pairs that are new or re-scored since ``done``."""
    if maturity_days < 0 or k <= 0:
        raise ValueError(
            f"need label_maturity_days >= 0 and card_precision_k > 0, got {maturity_days}, {k}"
        )
    last_day = features.select(nw.col("tx_date").max()).collect().item()
    if last_day is None:
        return _empty()
    last_day = _as_date(last_day)
    mature_until = last_day - dt.timedelta(days=maturity_days)

    scored = (
        predictions.select(
            "transaction_id", "score", "is_alert", "model_name", "model_version", "scored_at"
        )
        .join(
            features.select("transaction_id", "tx_date", "customer_id", "tx_fraud"),
            on="transaction_id",
            how="inner",
        )
        .filter(nw.col("tx_date") <= nw.lit(mature_until))
    )
    scored = _pending_only(scored, done)

    groups = (
        scored.group_by(*GROUP)
        .agg(nw.len().alias("n_transactions"), nw.col("scored_at").max().alias("last_scored_at"))
        .collect("pandas")
        .to_native()
    )
    if groups.empty:
        return _empty()
    by_score = (
        scored.group_by(*GROUP, "score", "is_alert")
        .agg(nw.len().alias("n"), nw.col("tx_fraud").sum().alias("n_fraud"))
        .collect("pandas")
        .to_native()
    )
    by_card = (
        scored.group_by(*GROUP, "customer_id")
        .agg(nw.col("score").max().alias("score"), nw.col("tx_fraud").max().alias("tx_fraud"))
        .collect("pandas")
        .to_native()
    )

    rows = []
    score_groups = dict(iter(by_score.groupby(GROUP, sort=False)))
    card_groups = dict(iter(by_card.groupby(GROUP, sort=False)))
    for group in groups.itertuples(index=False):
        key = (group.tx_date, group.model_name, group.model_version)
        counts = score_groups[key]
        cards = card_groups[key]
        rows.append(
            {
                "tx_date": _as_date(group.tx_date),
                "model_name": group.model_name,
                "model_version": group.model_version,
                "n_transactions": int(group.n_transactions),
                "n_cards": len(cards),
                **_score_metrics(counts),
                "card_precision_k": k,
                "card_precision_at_k": card_precision_at_k(cards, k),
                "labels_as_of": last_day,
                "last_scored_at": group.last_scored_at,
            }
        )
    frame = pd.DataFrame(rows, columns=list(OUTPUT_SCHEMA)).sort_values(GROUP, ignore_index=True)
    return _typed(frame)


def _pending_only(scored: nw.LazyFrame, done: nw.LazyFrame | None) -> nw.LazyFrame:
    """Keep the (day, version) groups without rows in ``done`` or scored again since."""
    if done is None:
        return scored
    latest = scored.group_by(*GROUP).agg(nw.col("scored_at").max().alias("last_scored_at"))
    pending = latest.join(done.select(*GROUP, "done_scored_at"), on=GROUP, how="left").filter(
        nw.col("done_scored_at").is_null() | (nw.col("last_scored_at") > nw.col("done_scored_at"))
    )
    return scored.join(pending.select(*GROUP), on=GROUP, how="semi")


def _score_metrics(counts: pd.DataFrame) -> dict[str, float | int | None]:
    """ROC AUC, AP, precision and recall from counts per (distinct score, alert flag).

    Each count row becomes a fraud row (weight n_fraud) and a genuine row (weight n - n_fraud):
    sklearn's weighted metrics over them equal the metrics over the individual transactions.
    """
    n = counts["n"].to_numpy(dtype="int64")
    n_fraud = counts["n_fraud"].to_numpy(dtype="int64")
    y_true = np.concatenate(
        [np.ones(len(counts), dtype="int8"), np.zeros(len(counts), dtype="int8")]
    )
    score = np.concatenate([counts["score"].to_numpy(dtype="float64")] * 2)
    alert = np.concatenate([counts["is_alert"].to_numpy(dtype="bool")] * 2)
    weight = np.concatenate([n_fraud, n - n_fraud]).astype("float64")
    keep = weight > 0
    y_true, score, alert, weight = y_true[keep], score[keep], alert[keep], weight[keep]

    frauds = int(n_fraud.sum())
    both_classes = 0 < frauds < int(n.sum())
    return {
        "n_frauds": frauds,
        "n_alerts": int(n[counts["is_alert"].to_numpy(dtype="bool")].sum()),
        "roc_auc": float(roc_auc_score(y_true, score, sample_weight=weight))
        if both_classes
        else None,
        "average_precision": (
            float(average_precision_score(y_true, score, sample_weight=weight))
            if both_classes
            else None
        ),
        "precision_at_threshold": _nan_to_none(
            precision_score(y_true, alert, sample_weight=weight, zero_division=np.nan)
        ),
        "recall_at_threshold": _nan_to_none(
            recall_score(y_true, alert, sample_weight=weight, zero_division=np.nan)
        ),
    }


def card_precision_at_k(cards: pd.DataFrame, k: int) -> float:
    """Fraudulent cards among the ``k`` cards with the highest score / ``k`` (ties: lower card id first).

    ``cards``: one row per card with its highest ``score`` and highest ``tx_fraud`` of the day.
    Divides by ``k`` also when fewer than ``k`` cards were active, as the handbook does.
    """
    top = cards.sort_values(["score", "customer_id"], ascending=[False, True], kind="stable").head(
        k
    )
    return float(int((top["tx_fraud"] == 1).sum()) / k)


def _nan_to_none(value: float) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _as_date(value) -> dt.date:
    """A date from whatever the engine returned (date, datetime, pandas/numpy timestamp)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _empty() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(OUTPUT_SCHEMA)))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Pandas dtypes that both engines read back as OUTPUT_SCHEMA (dates as datetime.date)."""
    pandas_types = {
        "bigint": "int64",
        "int": "int32",
        "double": "float64",
        "string": "object",
        "boolean": "bool",
    }
    out = frame.copy()
    for column, sql_type in OUTPUT_SCHEMA.items():
        if sql_type == "date":
            out[column] = pd.Series(
                [_as_date(v) for v in out[column]], index=out.index, dtype="object"
            )
        elif sql_type == "timestamp":
            out[column] = pd.to_datetime(out[column]).astype("datetime64[us]")
        else:
            out[column] = out[column].astype(pandas_types[sql_type])
    return out


def to_engine(frame: pd.DataFrame, *, like: nw.LazyFrame, session):
    """Return ``frame`` as the adapter's native type, typed as OUTPUT_SCHEMA.

    The only engine branch of this model: a PySpark DataFrame for dbt-spark / dbt-databricks, a
    DuckDB relation for dbt-duckdb (and for tests that pass DuckDB relations).
    """
    implementation = like.implementation
    if implementation.is_pyspark() or implementation.is_pyspark_connect():
        ddl = ", ".join(f"{column} {sql_type}" for column, sql_type in OUTPUT_SCHEMA.items())
        rows = [tuple(map(_python_value, row)) for row in frame.itertuples(index=False)]
        return session.createDataFrame(rows, schema=ddl)
    if implementation.is_duckdb():
        relation = session.from_df(frame)
        return relation.project(
            ", ".join(
                f"cast({column} as {sql_type}) as {column}"
                for column, sql_type in OUTPUT_SCHEMA.items()
            )
        )
    raise TypeError(f"{MODEL_NAME}: unsupported engine {implementation}")


def _python_value(value):
    """A plain Python value for Spark's row verifier (no pandas/numpy scalars, None for NaN)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value
