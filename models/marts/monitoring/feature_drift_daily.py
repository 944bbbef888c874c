"""Daily drift of each model feature against the training reference of the model that scored it.

One row per (transaction day, model name, model version, feature): the scored transactions of
that day (scoring.predictions joined to gold.transaction_features) compared with the reference
that ``ml train`` wrote for the model version (scoring.feature_reference /
scoring.feature_reference_sample).

* ``psi``: population stability index over the reference bins,
  ``sum((actual - expected) * ln(actual / expected))`` with both fractions floored at
  ``PSI_EPSILON`` so that empty bins stay finite. Bins are ``(bin_lower, bin_upper]``, the rule
  of ``ml.reference.assign_bins`` that computed the expected fractions (``ml train`` writes open
  outer edges, -inf / +inf; finite outer edges would still catch every value: the first bin takes
  values at or below its lower edge, the last bin values above its upper edge). ``is_drifted`` =
  ``psi >= psi_drift_threshold`` (dbt var; 0.25 is the usual "major shift").
* ``ks_statistic`` / ``ks_pvalue``: ``scipy.stats.ks_2samp`` of the day's values against the
  reference quantile sample (asymptotic p-value).

Portable: the same file runs on dbt-duckdb (DuckDB relations) and dbt-databricks / dbt-spark
(PySpark DataFrames). The join runs in the engine through narwhals; pandas gets, a month of
days per query, the days' feature values, which the KS statistic needs anyway, and bins them
(``numpy.searchsorted`` over the reference's upper edges). Project packages (``ml``) are not imported.

Incremental: a (day, model version) is (re)computed when it has no rows yet, or when it has
predictions scored after its rows were computed (``last_scored_at``).
"""

from __future__ import annotations

import datetime as dt

import narwhals as nw
import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

MODEL_NAME = "feature_drift_daily"
GROUP = ["tx_date", "model_name", "model_version"]
VERSION = ["model_name", "model_version"]
#: Days of feature values fetched per query for the KS statistics (bounds the memory of a batch:
#: a day at the default size is ~10k transactions x 21 features).
DAYS_PER_QUERY = 31
#: Floor of the actual and expected bin fractions in the PSI (an empty bin would give log(0)).
PSI_EPSILON = 1e-4

#: Output columns and their SQL types (spelled alike in DuckDB and Spark SQL).
OUTPUT_SCHEMA: dict[str, str] = {
    "tx_date": "date",
    "model_name": "string",
    "model_version": "string",
    "feature": "string",
    "n_values": "bigint",
    "reference_bins": "int",
    "psi": "double",
    "is_drifted": "boolean",
    "ks_statistic": "double",
    "ks_pvalue": "double",
    "last_scored_at": "timestamp",
}


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        unique_key=["tx_date", "model_name", "model_version", "feature"],
        packages=["narwhals", "scipy", "numpy", "pandas"],
    )
    threshold = float(dbt.config.meta_get("psi_drift_threshold", 0.25))

    predictions = nw.from_native(dbt.source("scoring", "predictions"))
    features = nw.from_native(dbt.ref("transaction_features"))
    reference = nw.from_native(dbt.source("scoring", "feature_reference"))
    sample = nw.from_native(dbt.source("scoring", "feature_reference_sample"))
    done = None
    if dbt.is_incremental:
        done = nw.from_native(
            session.sql(
                f"select distinct tx_date, model_name, model_version, last_scored_at as done_scored_at from {dbt.this}"
            )
        )
    frame = feature_drift_daily(
        predictions, features, reference, sample, psi_drift_threshold=threshold, done=done
    )
    return to_engine(frame, like=predictions, session=session)


def feature_drift_daily(
    predictions: nw.LazyFrame,
    features: nw.LazyFrame,
    reference: nw.LazyFrame,
    sample: nw.LazyFrame,
    *,
    psi_drift_threshold: float,
    done: nw.LazyFrame | None = None,
) -> pd.DataFrame:
    """The model's rows for the (day, version) pairs that are new or re-scored since ``done``."""
    bins = (
        reference.select(
            *VERSION, "feature", "bin_index", "bin_lower", "bin_upper", "expected_fraction"
        )
        .collect("pandas")
        .to_native()
    )
    if bins.empty:
        return _empty()
    names = sorted(bins["feature"].unique())
    missing = sorted(set(names) - set(features.collect_schema().names()))
    if missing:
        raise ValueError(
            f"scoring.feature_reference names features that gold.transaction_features lacks: {missing}"
        )

    scored = (
        predictions.select("transaction_id", *VERSION, "scored_at")
        .join(
            features.select("transaction_id", "tx_date", *names), on="transaction_id", how="inner"
        )
        .join(reference.select(*VERSION).unique(), on=VERSION, how="semi")
    )
    scored = _pending_only(scored, done)

    groups = (
        scored.group_by(*GROUP)
        .agg(nw.col("scored_at").max().alias("last_scored_at"))
        .collect("pandas")
        .to_native()
    )
    if groups.empty:
        return _empty()
    samples = {
        key: values["value"].to_numpy(dtype="float64")
        for key, values in sample.select(*VERSION, "feature", "value")
        .collect("pandas")
        .to_native()
        .groupby([*VERSION, "feature"], sort=False)
    }

    edges = {
        key: (group["bin_index"].to_numpy(), group["bin_upper"].to_numpy(dtype="float64"))
        for key, group in bins.sort_values("bin_index").groupby([*VERSION, "feature"], sort=False)
    }
    rows, counts = [], []
    days = [_as_date(day) for day in sorted(groups["tx_date"].unique())]
    # the days' feature values, DAYS_PER_QUERY days per query (one query per day re-ran the
    # predictions x features join 183 times at the default size: 169 s of 175)
    for first in range(0, len(days), DAYS_PER_QUERY):
        batch = days[first : first + DAYS_PER_QUERY]
        values_of_days = (
            scored.filter(nw.col("tx_date").is_in(batch))
            .select("tx_date", *VERSION, *names)
            .collect("pandas")
            .to_native()
        )
        for (day, name, version), values in values_of_days.groupby(["tx_date", *VERSION], sort=True):
            for feature in names:
                reference_values = samples.get((name, version, feature))
                day_values = values[feature].dropna().to_numpy(dtype="float64")
                statistic, pvalue = _ks(day_values, reference_values)
                if (name, version, feature) in edges:
                    filled, n = _bin_counts(day_values, *edges[(name, version, feature)])
                    counts.extend((day, name, version, feature, b, c) for b, c in zip(filled, n, strict=True))
                rows.append(
                    {
                        "tx_date": day,
                        "model_name": name,
                        "model_version": version,
                        "feature": feature,
                        "n_values": len(day_values),
                        "ks_statistic": statistic,
                        "ks_pvalue": pvalue,
                    }
                )
    counts = pd.DataFrame(counts, columns=[*GROUP, "feature", "bin_index", "n"])
    psi = population_stability_index(bins, counts, groups)
    # inner join: a feature without reference bins for a version has no row for that version
    frame = (
        pd.DataFrame(rows)
        .merge(psi, on=[*GROUP, "feature"], how="inner")
        .merge(groups, on=GROUP, how="inner")
    )
    frame["is_drifted"] = frame["psi"].ge(psi_drift_threshold)  # NaN (no values) -> False
    frame = frame[list(OUTPUT_SCHEMA)].sort_values([*GROUP, "feature"], ignore_index=True)
    return _typed(frame)


def _bin_counts(values: np.ndarray, bin_index: np.ndarray, bin_upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-empty bins of ``values`` (no NaN): their bin_index and count.

    A value belongs to the bin with ``bin_lower < value <= bin_upper`` (the bins are contiguous,
    ``ml.reference``: each lower edge is the previous upper edge); the first bin also takes values
    at or below its lower edge and the last bin values above its upper edge.
    """
    position = np.minimum(np.searchsorted(bin_upper, values, side="left"), len(bin_upper) - 1)
    n = np.bincount(position, minlength=len(bin_upper))
    filled = n > 0
    return bin_index[filled], n[filled]


def population_stability_index(
    bins: pd.DataFrame, counts: pd.DataFrame, groups: pd.DataFrame
) -> pd.DataFrame:
    """PSI per (day, version, feature) of the ``counts`` (GROUP, feature, bin_index, n) against
    the ``bins``' expected fractions, for each (day, version) of ``groups``.

    Bins of the reference without scored values count as empty; fractions are floored at
    PSI_EPSILON. Returns GROUP, feature, reference_bins, psi (NaN when there are no values).
    """
    keys = [*GROUP, "feature"]
    grid = groups[GROUP].merge(
        bins[[*VERSION, "feature", "bin_index", "expected_fraction"]], on=VERSION, how="inner"
    )
    grid = grid.merge(counts, on=[*keys, "bin_index"], how="left")
    n = grid["n"].fillna(0).astype("float64")
    grid["total"] = n.groupby([grid[k] for k in keys]).transform("sum")
    actual = np.maximum(n / grid["total"].where(grid["total"] > 0), PSI_EPSILON)
    expected = np.maximum(grid["expected_fraction"].astype("float64"), PSI_EPSILON)
    grid["term"] = (actual - expected) * np.log(actual / expected)
    out = (
        grid.groupby(keys, sort=False)
        .agg(reference_bins=("bin_index", "size"), psi=("term", "sum"), total=("total", "first"))
        .reset_index()
    )
    out.loc[out["total"] == 0, "psi"] = np.nan
    return out.drop(columns="total")


def _ks(values: np.ndarray, reference: np.ndarray | None) -> tuple[float | None, float | None]:
    if reference is None or len(reference) == 0 or len(values) == 0:
        return None, None
    # the asymptotic p-value: at a day's ~10k values scipy's default tries the exact one, which
    # cost 30 of the 112 s at the default size
    result = ks_2samp(values, reference, method="asymp")
    return float(result.statistic), float(result.pvalue)


def _pending_only(scored: nw.LazyFrame, done: nw.LazyFrame | None) -> nw.LazyFrame:
    """Keep the (day, version) groups without rows in ``done`` or scored again since."""
    if done is None:
        return scored
    latest = scored.group_by(*GROUP).agg(nw.col("scored_at").max().alias("last_scored_at"))
    pending = latest.join(done.select(*GROUP, "done_scored_at"), on=GROUP, how="left").filter(
        nw.col("done_scored_at").is_null() | (nw.col("last_scored_at") > nw.col("done_scored_at"))
    )
    return scored.join(pending.select(*GROUP), on=GROUP, how="semi")


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
