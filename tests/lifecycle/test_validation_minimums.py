"""The validation minimums fit the data at hand: Card Precision@k is judged against the best a
model can reach on the test window, so a small world (few frauds a day) can pass."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.lifecycle.validate import cp_ceiling, validation_rules
from ml.platform.settings import load_settings


def _window(frauded_cards_per_day: int, days: int = 7) -> pd.DataFrame:
    rows = []
    for day in range(days):
        for card in range(300):
            rows.append(
                {
                    "tx_date": dt.date(2018, 5, 1) + dt.timedelta(days=day),
                    "customer_id": card,
                    "tx_fraud": int(card < frauded_cards_per_day),
                }
            )
    return pd.DataFrame(rows)


def test_the_card_precision_ceiling_is_frauded_cards_per_day_over_k() -> None:
    settings = load_settings()  # k = 100
    assert cp_ceiling(_window(7), settings) == 0.07
    assert cp_ceiling(_window(250), settings) == 1.0


def test_a_ci_size_world_passes_the_default_minimums() -> None:
    # given the default settings and what `ml validate` measured on the CI-size world
    # (Makefile CI_SIM: ~7 frauded cards a day): AP 0.483, CP@100 0.041, AUC 0.87
    settings = load_settings()
    measured = {"roc_auc": 0.87, "average_precision": 0.483, "card_precision_at_100": 0.041}
    # when the rules are applied with the window's ceiling
    rules = validation_rules(settings, measured, None, 0.0, cp_ceiling(_window(7), settings))
    # then it passes; a model far below what the window allows still fails
    assert all(r.passed for r in rules), [r for r in rules if not r.passed]
    weak = {**measured, "card_precision_at_100": 0.005}
    failed = [r.name for r in validation_rules(settings, weak, None, 0.0, 0.07) if not r.passed]
    assert failed == ["min_card_precision_at_100"]
