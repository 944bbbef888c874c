"""Loading and splitting the gold feature table, the way the Fraud Detection Handbook does.

Time-based splits only, never shuffled. A split is a :class:`Windows`: ``train_days`` of training
data, then ``delay_days`` of delay (labels of those days are not known yet when the model is
trained, so they are used neither for training nor for testing), then ``test_days`` of test data::

    train_start .. train_end | delay (delay_days) | test_start .. test_end
                                                  ^ label_cutoff: what the bank knew at training

Point-in-time labels (training): a training transaction counts as a fraud only if its fraud was
reported at or before the label cutoff (the start of the test window, i.e. the moment the model
is trained). Frauds reported later are genuine as far as the bank knew.

Test set (handbook, chapter 3.5 "get_train_test_set"): cards already known to be compromised are
removed, since the bank blocks them. On test day ``D`` a card is known compromised if it had a
fraud in the training window, or a fraud (from ``train_start`` on) that was reported before
``D`` (``fraud_reported_at < D 00:00``; ``training.known_compromised: reported``, the default).
The handbook's own code instead assumes every fraud becomes known exactly ``delay_days`` after
the transaction (``known_compromised: delay``); that keeps more (easy) repeat frauds of
compromised cards in the test set and gives higher scores. Test labels are the table's ``tx_fraud`` (mature: the test
window ends at least ``delay_days`` before the last day of the table).

Typical use::

    with open_warehouse(settings, read_only=True) as wh:
        windows = default_windows(settings.training, last_tx_date(wh, settings.model.feature_table))
        split = load_split(wh, settings, windows)
    model.fit(feature_matrix(split.train, features), split.train[label])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from ml.platform.errors import DataNotReadyError
from ml.platform.settings import Settings, TrainingSettings
from ml.platform.tables import CUSTOMER_COLUMN, DATE_COLUMN, ID_COLUMNS, REPORTED_AT
from ml.platform.warehouse import Warehouse

#: Columns read besides the features and the label.
DBT_HINT = "run `dbt build` to create it"
#: How the test set decides which cards are already known compromised (see evaluation_set).
KNOWN_COMPROMISED_RULES = ("reported", "delay")
KnownCompromisedRule = Literal["reported", "delay"]
#: The order of the rows ``ml`` reads (by time; the id breaks ties), sorted by the engine.
ROW_ORDER = ("tx_datetime", "transaction_id")
#: What the test set needs of a fraud before or in it: which card, which day, reported when.
FRAUD_COLUMNS = (CUSTOMER_COLUMN, DATE_COLUMN, REPORTED_AT)


class EmptyWindowError(DataNotReadyError):
    """A training or test window holds no transactions (or no frauds to learn from)."""


class LabelsNotMatureError(DataNotReadyError):
    """The test window reaches days whose fraud labels are not known yet."""


@dataclass(frozen=True)
class Windows:
    """One train / delay / test split; all bounds inclusive, in transaction days."""

    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date

    def __post_init__(self) -> None:
        if not self.train_start <= self.train_end < self.test_start <= self.test_end:
            raise ValueError(f"windows out of order: {self.describe()}")

    @property
    def delay_days(self) -> int:
        return (self.test_start - self.train_end).days - 1

    @property
    def label_cutoff(self) -> pd.Timestamp:
        """Training labels are those reported at or before this instant (start of the test window)."""
        return pd.Timestamp(self.test_start)

    def shifted(self, days: int) -> Windows:
        """The same windows moved ``days`` later (negative: earlier)."""
        delta = dt.timedelta(days=days)
        return Windows(
            self.train_start + delta,
            self.train_end + delta,
            self.test_start + delta,
            self.test_end + delta,
        )

    def as_dict(self) -> dict[str, str]:
        """ISO dates by name (for MLflow params/tags)."""
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
        }

    def describe(self) -> str:
        return (
            f"train {self.train_start}..{self.train_end}, test {self.test_start}..{self.test_end}"
        )


def make_windows(test_end: dt.date, train_days: int, delay_days: int, test_days: int) -> Windows:
    """Windows ending at ``test_end``: ``train_days`` | ``delay_days`` | ``test_days``."""
    test_start = test_end - dt.timedelta(days=test_days - 1)
    train_end = test_start - dt.timedelta(days=delay_days + 1)
    train_start = train_end - dt.timedelta(days=train_days - 1)
    return Windows(train_start, train_end, test_start, test_end)


def last_mature_day(last_tx_date: dt.date, delay_days: int) -> dt.date:
    """Last transaction day whose labels are mature, given the last day in the table."""
    return last_tx_date - dt.timedelta(days=delay_days)


def default_windows(
    training: TrainingSettings, last_tx_date: dt.date, test_end: dt.date | None = None
) -> Windows:
    """The training windows of ``training`` ending ``test_end`` (default: ``training.test_end``,
    then the last mature day, ``last_tx_date - delay_days``). Raises
    :class:`LabelsNotMatureError` if the test end is later than the last mature day."""
    mature = last_mature_day(last_tx_date, training.delay_days)
    end = test_end or training.test_end or mature
    if end > mature:
        raise LabelsNotMatureError(
            f"labels are not mature after {mature} (last transaction day {last_tx_date} minus "
            f"{training.delay_days} days of label delay); choose a test end on or before {mature}"
        )
    return make_windows(end, training.train_days, training.delay_days, training.test_days)


def prequential_windows(last: Windows, folds: int, step_days: int | None = None) -> list[Windows]:
    """The handbook's prequential folds: ``last`` then the same blocks shifted back by
    ``step_days`` (default: the test window length, i.e. one week), most recent first."""
    if folds < 1:
        raise ValueError("folds must be >= 1")
    step = step_days or (last.test_end - last.test_start).days + 1
    return [last.shifted(-step * i) for i in range(folds)]


def feature_columns(settings: Settings) -> list[str]:
    """All columns ``ml`` reads from the feature table: ids, features, label, report time."""
    cols = [*ID_COLUMNS, *settings.model.features, settings.model.label, REPORTED_AT]
    return list(dict.fromkeys(cols))


def require_feature_table(wh: Warehouse, settings: Settings) -> None:
    """Raise DataNotReadyError (with a dbt hint) if the feature table is missing or lacks columns."""
    table = settings.model.feature_table
    wh.require(table, DBT_HINT)
    missing = sorted(set(feature_columns(settings)) - set(wh.columns(table)))
    if missing:
        raise DataNotReadyError(
            f"{table} lacks columns {', '.join(missing)}; rebuild it with `dbt build`"
        )


def table_date_range(wh: Warehouse, settings: Settings) -> tuple[dt.date, dt.date]:
    """(first, last) ``tx_date`` of the feature table; DataNotReadyError if missing or empty."""
    require_feature_table(wh, settings)
    table = settings.model.feature_table
    first = wh.scalar(f"select min({DATE_COLUMN}) from {table}")
    last = wh.scalar(f"select max({DATE_COLUMN}) from {table}")
    if last is None:
        raise EmptyWindowError(f"{table} is empty; load transactions and run `dbt build`")
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


def read_features(wh: Warehouse, settings: Settings, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Rows of the feature table with ``start <= tx_date <= end`` (ids, features, label, report time),
    sorted by transaction time, ``tx_date`` as ``datetime64`` (midnight)."""
    require_feature_table(wh, settings)
    frame = wh.read(
        settings.model.feature_table,
        feature_columns(settings),
        DATE_COLUMN,
        start,
        end,
        order_by=ROW_ORDER,
    )
    frame[DATE_COLUMN] = pd.to_datetime(frame[DATE_COLUMN])
    frame[REPORTED_AT] = pd.to_datetime(frame[REPORTED_AT])
    frame[settings.model.label] = frame[settings.model.label].fillna(0).astype("int64")
    return frame


def feature_matrix(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """The model input: ``features`` in order, as float64 (the logged model signature).

    One 2-D float64 array under the frame (one pandas block): scikit-learn's input check then
    takes it as it is, where a frame of several blocks would be copied into a new array at every
    ``predict``/``fit`` call (0.4-0.8 s per scoring of the default dataset, bench/bench_score.py).
    """
    columns = list(features)
    values = frame.loc[:, columns].to_numpy(dtype="float64")
    return pd.DataFrame(values, columns=columns, index=frame.index, copy=False)


def _between(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.Series:
    dates = frame[DATE_COLUMN]
    return (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))


def training_set(frame: pd.DataFrame, windows: Windows, label: str = "tx_fraud") -> pd.DataFrame:
    """Training rows of ``frame`` with point-in-time labels.

    ``label`` becomes 1 only for frauds reported at or before ``windows.label_cutoff``; the
    table's label is kept as ``<label>_final`` for diagnostics.
    """
    train = frame.loc[_between(frame, windows.train_start, windows.train_end)].copy()
    train[f"{label}_final"] = train[label]
    known = train[REPORTED_AT].notna() & (train[REPORTED_AT] <= windows.label_cutoff)
    train[label] = ((train[label] == 1) & known).astype("int64")
    return train.reset_index(drop=True)


def evaluation_set(
    frame: pd.DataFrame,
    windows: Windows,
    label: str = "tx_fraud",
    rule: KnownCompromisedRule = "reported",
) -> pd.DataFrame:
    """Test rows of ``frame`` without the cards already known compromised on each test day.

    (Named ``evaluation_set``, not ``test_set``, so that pytest never collects it.)

    ``frame`` must cover ``windows.train_start .. windows.test_end``. A card is known compromised
    on test day ``D`` if it had a fraud in the training window, or (``rule``):

    * ``"reported"`` (default, point in time): a fraud from ``train_start`` on that was reported
      before ``D``; quickly reported frauds of the test window itself count too;
    * ``"delay"`` (the handbook's code): a fraud on a day up to ``D - delay_days - 1``, i.e. every
      fraud is assumed to be known exactly ``delay_days`` later, and not before.
    """
    history = frame.loc[_between(frame, windows.train_start, windows.test_end)]
    test_rows = history.loc[_between(history, windows.test_start, windows.test_end)]
    return _without_known_compromised(test_rows, history.loc[history[label] == 1], windows, rule)


def _without_known_compromised(
    test_rows: pd.DataFrame,
    frauds: pd.DataFrame,
    windows: Windows,
    rule: KnownCompromisedRule,
) -> pd.DataFrame:
    """``test_rows`` (rows of the test window) without the cards known compromised on their day,
    knowing ``frauds``: the fraudulent rows (card, day, report time) of ``train_start ..
    test_end`` (see :func:`evaluation_set`)."""
    if rule not in KNOWN_COMPROMISED_RULES:
        raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(KNOWN_COMPROMISED_RULES)}")
    in_training = frauds[DATE_COLUMN] <= pd.Timestamp(windows.train_end)
    known_from_training = set(frauds.loc[in_training, CUSTOMER_COLUMN])
    days = []
    for day in pd.date_range(windows.test_start, windows.test_end, freq="D"):
        if rule == "reported":
            seen = frauds[REPORTED_AT].notna() & (frauds[REPORTED_AT] < day)
        else:
            seen = frauds[DATE_COLUMN] < day - pd.Timedelta(days=windows.delay_days)
        known = known_from_training.union(frauds.loc[seen, CUSTOMER_COLUMN])
        rows = test_rows.loc[test_rows[DATE_COLUMN] == day]
        days.append(rows.loc[~rows[CUSTOMER_COLUMN].isin(known)])
    test = pd.concat(days) if days else test_rows.iloc[:0]
    return test.reset_index(drop=True)


@dataclass(frozen=True)
class Split:
    """Training and test sets of one :class:`Windows`."""

    windows: Windows
    train: pd.DataFrame
    test: pd.DataFrame


def split_frame(
    frame: pd.DataFrame,
    windows: Windows,
    label: str = "tx_fraud",
    rule: KnownCompromisedRule = "reported",
) -> Split:
    """Split an already-read frame (covering ``train_start .. test_end``); raise EmptyWindowError
    if the training window has no rows or no known fraud, or the test window has no rows.
    ``rule``: see :func:`evaluation_set`."""
    train = training_set(frame, windows, label)
    test = evaluation_set(frame, windows, label, rule)
    return _checked(Split(windows=windows, train=train, test=test), label)


def _checked(split: Split, label: str) -> Split:
    windows = split.windows
    if split.train.empty:
        raise EmptyWindowError(
            f"no transactions in the training window {windows.train_start}..{windows.train_end}; "
            "choose another window (--test-end / --train-days) or load more data"
        )
    if int(split.train[label].sum()) == 0:
        raise EmptyWindowError(
            f"no fraud reported by {windows.test_start} in the training window "
            f"{windows.train_start}..{windows.train_end}; widen it with --train-days"
        )
    if split.test.empty:
        raise EmptyWindowError(
            f"no transactions in the test window {windows.test_start}..{windows.test_end}; "
            "choose another --test-end"
        )
    return split


def read_frauds(wh: Warehouse, settings: Settings, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The fraudulent rows of ``start <= tx_date <= end`` (by the table's label): card, day and
    report time only, what tells which cards are known compromised (:func:`evaluation_set`)."""
    label = settings.model.label
    columns = [*FRAUD_COLUMNS, label]
    frame = wh.read(settings.model.feature_table, columns, DATE_COLUMN, start, end)
    frauds = frame.loc[frame[label] == 1, list(FRAUD_COLUMNS)].reset_index(drop=True)
    frauds[DATE_COLUMN] = pd.to_datetime(frauds[DATE_COLUMN])
    frauds[REPORTED_AT] = pd.to_datetime(frauds[REPORTED_AT])
    return frauds


def _test_rows(
    wh: Warehouse, settings: Settings, windows: Windows, earlier_frauds: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The test set of ``windows``: the rows of the test window read whole, the rows before it
    only as frauds (``earlier_frauds`` if the caller holds those of the training window)."""
    label = settings.model.label
    before_test = windows.test_start - dt.timedelta(days=1)
    if earlier_frauds is None:
        earlier = [read_frauds(wh, settings, windows.train_start, before_test)]
    else:  # the training window's: read only the delay's
        earlier = [earlier_frauds]
        if windows.delay_days:
            delay_start = windows.train_end + dt.timedelta(days=1)
            earlier.append(read_frauds(wh, settings, delay_start, before_test))
    rows = read_features(wh, settings, windows.test_start, windows.test_end)
    frauds = pd.concat(
        [frame[list(FRAUD_COLUMNS)] for frame in [*earlier, rows.loc[rows[label] == 1]]],
        ignore_index=True,
    )
    return _without_known_compromised(rows, frauds, windows, settings.training.known_compromised)


def load_split(wh: Warehouse, settings: Settings, windows: Windows) -> Split:
    """The split of ``windows`` read from the feature table; equal to :func:`split_frame` of
    ``train_start .. test_end`` read whole, but the delay window is read as frauds only (four
    columns) and the training and test windows one after the other, each sorted by the engine:
    a third fewer rows read and no second copy to sort (bench/README.md, ``ml train`` at 10x)."""
    label = settings.model.label
    rows = read_features(wh, settings, windows.train_start, windows.train_end)
    frauds = rows.loc[rows[label] == 1, list(FRAUD_COLUMNS)]
    train = training_set(rows, windows, label)
    del rows
    test = _test_rows(wh, settings, windows, frauds)
    return _checked(Split(windows=windows, train=train, test=test), label)


def load_test_set(wh: Warehouse, settings: Settings, windows: Windows) -> pd.DataFrame:
    """The test set of ``windows`` (compromised cards excluded), e.g. to validate a model.

    Reads the frauds from ``windows.train_start`` on so that known-compromised cards can be
    excluded. Raises :class:`EmptyWindowError` if no transaction is left.
    """
    test = _test_rows(wh, settings, windows)
    if test.empty:
        raise EmptyWindowError(
            f"no transactions in the test window {windows.test_start}..{windows.test_end}"
        )
    return test


def describe_frame(frame: pd.DataFrame, label: str = "tx_fraud") -> dict[str, float]:
    """Row count, fraud count and rate, days, cards (for logging)."""
    n = len(frame)
    frauds = int(frame[label].sum()) if n else 0
    return {
        "rows": n,
        "frauds": frauds,
        "fraud_rate": frauds / n if n else float("nan"),
        "days": int(frame[DATE_COLUMN].nunique()) if n else 0,
        "cards": int(frame[CUSTOMER_COLUMN].nunique()) if n else 0,
    }


__all__ = [
    "DataNotReadyError",
    "EmptyWindowError",
    "LabelsNotMatureError",
    "Split",
    "Windows",
    "default_windows",
    "describe_frame",
    "evaluation_set",
    "feature_columns",
    "feature_matrix",
    "last_mature_day",
    "load_split",
    "load_test_set",
    "make_windows",
    "prequential_windows",
    "read_features",
    "read_frauds",
    "require_feature_table",
    "split_frame",
    "table_date_range",
    "training_set",
]
