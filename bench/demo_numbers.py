"""The numbers of ``make demo``: performance before, during and after a drift, detection, recovery.

Reads what ``make demo`` wrote -- the warehouse ``warehouse/demo.duckdb`` (opened read-only) and,
for a cross-check of the champion alias, the MLflow store ``mlruns/demo/mlflow.db`` (read-only
SQLite) -- and prints:

* the champion's daily average precision (AP) and Card Precision@100 on matured labels, the
  alerts at the threshold per day, for three periods;
* the day of the first monitoring alert after the drift start and the days to detection;
* the retraining that recovered, the day it was promoted and the days to recovery;
* every decision of ``scoring.model_events`` (trained, validated, rejected, promoted,
  rolled_back, drift_alert, performance_alert) with its reason;
* the champion alias of the MLflow registry against the champion the events name.

It computes nothing that the tables do not hold: a number that is not recorded is printed as
"not recorded" (or "none"), never estimated.

    .venv/bin/python bench/demo_numbers.py                       # after make demo
    .venv/bin/python bench/demo_numbers.py --tolerance 0.10 --hold 3
    .venv/bin/python bench/demo_numbers.py --warehouse /tmp/w.duckdb --mlflow-db /tmp/mlflow.db

Definitions (all days are business days of the replay, dates of ``gold.model_performance_daily``):

drift start
    The earliest ``start`` of the ``simulation.drift`` events that the replay's bootstrap recorded
    (``day_completed`` of the bootstrap, ``details.simulation.drift``); ``--drift-start`` overrides.
champion day
    A day D with a ``scored`` event: ``model_version`` of that event is the champion that scored
    D. Its matured metrics are the row of ``gold.model_performance_daily`` for (D, that version);
    a day whose labels have not matured by the end of the replay has no row and is left out.
before
    Champion days before the drift start.
target
    The mean daily AP *before*, minus ``--tolerance`` (0.05).
recovery day
    The first champion day D on or after the drift start that (a) was scored by a version
    promoted on or after the drift start and (b) has AP >= target, as have the ``--hold`` - 1
    (default 0) champion days that follow it (all of them must exist). The *recovering version*
    is the version that scored D and the *retraining that recovered* is its ``promoted`` event.
    Without such a day the recovery is "not reached"; the periods then use the last version
    promoted after the drift start.
during
    Champion days from the drift start to the day before the recovering version's first scored
    day (split by the version that scored them).
after
    Champion days scored by the recovering version.
days to detection
    Event date of the first ``drift_alert`` or ``performance_alert`` on or after the drift start,
    minus the drift start (the first of each kind is printed as well).
days to recovery
    Recovery day minus the drift start. Printed with it: the days from the drift start to the
    retraining that recovered (its promotion day) and to its first scored day, and the day the
    recovery could be seen (``labels_as_of`` of the recovery day's row: when its labels matured),
    how many matured days of the recovering version are within the target, and how many are at
    or above the performance alert's AP floor (``min_average_precision`` of the
    ``performance_alert`` events' details; not printed if no performance alert fired).

Exit status 1 when the warehouse or a table is missing (run ``make demo`` first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
DECISIONS = (
    "trained",
    "validated",
    "rejected",
    "promoted",
    "rolled_back",
    "drift_alert",
    "performance_alert",
)
ALERTS = ("drift_alert", "performance_alert")


@dataclass(frozen=True)
class Day:
    """A champion day: the version that scored it and, once matured, its metrics."""

    day: dt.date
    version: str
    alerts: int | None
    average_precision: float | None
    card_precision: float | None
    labels_as_of: dt.date | None


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


def _read(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException as exc:
        _fail(f"{exc.args[0].splitlines()[0]} -- run make demo first")
    return []


def _drift_start(events: list[tuple]) -> dt.date | None:
    for _, _, event, _, _, details in events:
        if event != "day_completed":
            continue
        payload = json.loads(details or "{}")
        if payload.get("phase") == "bootstrap":
            starts = [e["start"] for e in payload.get("simulation", {}).get("drift") or []]
            return dt.date.fromisoformat(min(starts)) if starts else None
    return None


def _champion_days(con: duckdb.DuckDBPyConnection, events: list[tuple]) -> list[Day]:
    perf = {
        (d, str(v)): (ap, cp, asof)
        for d, v, ap, cp, asof in _read(
            con,
            "select tx_date, model_version, average_precision, card_precision_at_k, labels_as_of "
            "from gold.model_performance_daily",
        )
    }
    days = []
    for day, _, event, version, _, details in events:
        if event != "scored":
            continue
        alerts = json.loads(details or "{}").get("alerts")
        ap, cp, asof = perf.get((day, str(version)), (None, None, None))
        days.append(Day(day, str(version), alerts, ap, cp, asof))
    return sorted(days, key=lambda d: d.day)


def _promotions(events: list[tuple]) -> list[tuple[dt.date, str]]:
    """(day, version that became champion) of every promoted / rolled_back event."""
    out = []
    for day, _, event, version, _, details in events:
        if event in ("promoted", "rolled_back"):
            champion = json.loads(details or "{}").get("champion_version") or version
            out.append((day, str(champion)))
    return out


def _stats(days: list[Day]) -> str:
    aps = [d.average_precision for d in days if d.average_precision is not None]
    cps = [d.card_precision for d in days if d.card_precision is not None]
    alerts = [d.alerts for d in days if d.alerts is not None]
    if not days:
        return "no day"
    span = f"{days[0].day:%m-%d}..{days[-1].day:%m-%d}"
    versions = "+".join(dict.fromkeys(f"v{d.version}" for d in days))
    if not aps:
        return f"{span} {versions:>6}  no matured day"
    return (
        f"{span} {versions:>6}  {len(aps):>2} matured days  AP mean {statistics.fmean(aps):.3f} "
        f"(min {min(aps):.3f}, max {max(aps):.3f})  CP@100 mean {statistics.fmean(cps):.3f}  "
        f"alerts/day {statistics.fmean(alerts):.0f}"
    )


def _registry_champion(mlflow_db: Path, model_name: str) -> str:
    if not mlflow_db.exists():
        return f"not checked: {mlflow_db} does not exist"
    con = sqlite3.connect(f"file:{mlflow_db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select alias, version from registered_model_aliases where name = ? order by alias",
            (model_name,),
        ).fetchall()
    except sqlite3.Error as exc:
        return f"not checked: {exc}"
    finally:
        con.close()
    return ", ".join(f"{alias} = v{version}" for alias, version in rows) or "no alias"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=REPO_ROOT / "warehouse/demo.duckdb")
    parser.add_argument("--mlflow-db", type=Path, default=REPO_ROOT / "mlruns/demo/mlflow.db")
    parser.add_argument("--drift-start", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--hold", type=int, default=1, help="days in a row within the target")
    args = parser.parse_args()
    if args.hold < 1:
        parser.error("--hold is at least 1")
    if not args.warehouse.exists():
        _fail(f"{args.warehouse} does not exist -- run make demo first")

    con = duckdb.connect(str(args.warehouse), read_only=True)
    events = _read(
        con,
        "select event_date, event_at, event, model_version, reason, details "
        "from scoring.model_events order by event_date, event_at",
    )
    model_names = {r[0] for r in _read(con, "select distinct model_name from scoring.model_events")}
    days = _champion_days(con, events)
    drift = _read(
        con,
        "select tx_date, feature, max(psi) from gold.feature_drift_daily group by all",
    )
    con.close()

    drift_start = args.drift_start or _drift_start(events)
    if drift_start is None:
        _fail("no drift start: the bootstrap recorded no simulation.drift; pass --drift-start")
    if not days:
        _fail("no scored day in scoring.model_events -- run make demo first")

    before = [d for d in days if d.day < drift_start]
    pre_aps = [d.average_precision for d in before if d.average_precision is not None]
    if not pre_aps:
        _fail(f"no matured champion day before the drift start {drift_start}")
    pre_mean = statistics.fmean(pre_aps)
    target = pre_mean - args.tolerance

    promoted_after = [(day, v) for day, v in _promotions(events) if day >= drift_start]
    new_versions = {v for _, v in promoted_after}
    matured = [d for d in days if d.day >= drift_start and d.average_precision is not None]
    recovery = None
    for i, d in enumerate(matured):
        window = matured[i : i + args.hold]
        if (
            d.version in new_versions
            and len(window) == args.hold
            and all(w.average_precision >= target for w in window)
        ):
            recovery = d
            break
    if recovery is not None:
        recovering = recovery.version
    else:
        scored_versions = {d.version for d in matured}
        candidates = [v for _, v in promoted_after if v in scored_versions]
        recovering = candidates[-1] if candidates else None
    first_recovering = min((d.day for d in days if d.version == recovering), default=None)
    during = [
        d
        for d in days
        if d.day >= drift_start and (first_recovering is None or d.day < first_recovering)
    ]
    after = [d for d in days if d.version == recovering and d.day >= drift_start]

    print(f"warehouse {args.warehouse} (read-only); drift start {drift_start}")
    print(
        f"replayed days {days[0].day}..{days[-1].day}; last matured day "
        f"{max((d.day for d in days if d.average_precision is not None), default='none')}"
    )
    print()
    print("Champion's daily metrics on matured labels (gold.model_performance_daily)")
    print(f"  before  {_stats(before)}")
    by_version: dict[str, list[Day]] = {}
    for d in during:
        by_version.setdefault(d.version, []).append(d)
    print(f"  during  {_stats(during)}")
    for part in by_version.values():
        print(f"     of which {_stats(part)}")
    print(f"  after   {_stats(after)}")
    print()
    print("  day    version  alerts   AP     CP@100  labels matured")
    for d in days:
        ap = "-" if d.average_precision is None else f"{d.average_precision:.3f}"
        cp = "-" if d.card_precision is None else f"{d.card_precision:.2f}"
        asof = "not yet" if d.labels_as_of is None else f"{d.labels_as_of:%m-%d}"
        mark = "  <- drift starts" if d.day == drift_start else ""
        print(f"  {d.day:%m-%d}  v{d.version:<6} {d.alerts!s:>6}  {ap:>6}  {cp:>6}  {asof}{mark}")
    print()

    psi_on = {}
    for day, feature, psi in drift:
        if psi is not None and day in (drift_start - dt.timedelta(days=1), drift_start):
            psi_on.setdefault(day, []).append((psi, feature))
    print("Feature drift (gold.feature_drift_daily, largest PSI)")
    for day in sorted(psi_on):
        top = sorted(psi_on[day], reverse=True)[:3]
        print(f"  {day}: " + ", ".join(f"{f} {p:.2f}" for p, f in top))
    print()

    print("Detection")
    alerts = [
        (day, event) for day, _, event, *_ in events if event in ALERTS and day >= drift_start
    ]
    if alerts:
        day, event = alerts[0]
        print(f"  first alert: {event} on {day}: days to detection {(day - drift_start).days}")
        for kind in ALERTS:
            first = next((d for d, e in alerts if e == kind), None)
            lag = "none" if first is None else f"{first} ({(first - drift_start).days} days)"
            print(f"  first {kind}: {lag}")
    else:
        print("  no drift or performance alert on or after the drift start: not detected")
    print()

    print(
        f"Recovery (target: AP >= pre-drift mean {pre_mean:.3f} - {args.tolerance} = "
        f"{target:.3f} on {args.hold} champion day(s) in a row)"
    )
    if recovering is None:
        print("  no version promoted after the drift start scored a matured day: not recovered")
    else:
        promo = next(day for day, v in promoted_after if v == recovering)
        print(
            f"  retraining that {'recovered' if recovery else 'came last'}: v{recovering} "
            f"promoted {promo} ({(promo - drift_start).days} days after the drift start), "
            f"first scored {first_recovering} ({(first_recovering - drift_start).days} days)"
        )
        if recovery is None:
            print("  recovery not reached within the replay")
        else:
            print(
                f"  recovery day {recovery.day} (AP {recovery.average_precision:.3f}): "
                f"days to recovery {(recovery.day - drift_start).days}; seen when its labels "
                f"matured on {recovery.labels_as_of} "
                f"({(recovery.labels_as_of - drift_start).days} days)"
            )
        within = [d for d in after if d.average_precision is not None]
        held = sum(d.average_precision >= target for d in within)
        print(f"  days of v{recovering} within the target: {held} of {len(within)} matured")
        floors = {
            json.loads(details or "{}").get("min_average_precision")
            for _, _, event, _, _, details in events
            if event == "performance_alert"
        } - {None}
        for floor in sorted(floors):
            above = sum(d.average_precision >= floor for d in within)
            print(
                f"  days of v{recovering} at or above the performance alert's floor {floor}: "
                f"{above} of {len(within)} matured"
            )
    print()

    print("Decisions (scoring.model_events)")
    for day, _, event, version, reason, _ in events:
        if event in DECISIONS:
            print(f"  {day}  {event:<17} v{version!s:<3} {reason}")
    last = _promotions(events)[-1][1] if _promotions(events) else "none"
    print()
    for name in sorted(model_names):
        registry = _registry_champion(args.mlflow_db, name)
        print(f"champion by the events: v{last}; MLflow registry {name}: {registry}")


if __name__ == "__main__":
    main()
