"""ml.metrics: Card Precision@k on a hand-computed example, threshold metrics, sklearn parity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ml.lifecycle.metrics import card_precision_at_k, compute_metrics, threshold_metrics


@pytest.fixture
def two_days() -> tuple[pd.DataFrame, np.ndarray]:
    """Two days, four cards, k = 2 (see the expected values in each test).

    Day 1: card A has a genuine tx scored 0.9 and a fraud scored 0.1 -> card score 0.9, label 1;
           B 0.8 genuine; C 0.7 fraud. Top 2 = A (fraud), B -> 1/2. A is now detected.
    Day 2: A 0.99 genuine (removed: detected on day 1); C 0.9 fraud; D 0.85 fraud; B 0.1 genuine.
           Top 2 = C, D -> 2/2 (without removal: A, C -> 1/2).
    """
    rows = [
        ("2018-04-01", "A", 0, 0.9, 10.0),
        ("2018-04-01", "A", 1, 0.1, 300.0),
        ("2018-04-01", "B", 0, 0.8, 20.0),
        ("2018-04-01", "C", 1, 0.7, 50.0),
        ("2018-04-02", "A", 0, 0.99, 30.0),
        ("2018-04-02", "C", 1, 0.9, 70.0),
        ("2018-04-02", "D", 1, 0.85, 90.0),
        ("2018-04-02", "B", 0, 0.1, 40.0),
    ]
    frame = pd.DataFrame(rows, columns=["tx_date", "customer_id", "tx_fraud", "score", "tx_amount"])
    frame["tx_date"] = pd.to_datetime(frame["tx_date"])
    return frame, frame.pop("score").to_numpy()


def test_card_precision_at_k_matches_hand_computed_example(two_days):
    # given the two-day example
    frame, scores = two_days
    # when Card Precision@2 is computed
    result = card_precision_at_k(frame, scores, k=2)
    # then day 1 is 1/2, day 2 is 2/2 (card A removed), the mean is 0.75
    assert result.per_day.tolist() == [0.5, 1.0]
    assert result.mean == pytest.approx(0.75)
    assert result.compromised_cards_per_day.tolist() == [2, 2]


def test_card_precision_without_removal_counts_detected_cards_again(two_days):
    frame, scores = two_days
    result = card_precision_at_k(frame, scores, k=2, remove_detected=False)
    assert result.per_day.tolist() == [0.5, 0.5]


def test_card_precision_divides_by_k_even_with_fewer_cards(two_days):
    # given k larger than the number of active cards
    frame, scores = two_days
    # when / then: day 1 alerts all 3 cards, A and C are frauds -> 2/10 (A, C now detected);
    # day 2 has B and D left, D is a fraud -> 1/10
    assert card_precision_at_k(frame, scores, k=10).per_day.tolist() == [0.2, 0.1]


def test_threshold_metrics_count_alerts_and_fraud_amount(two_days):
    frame, scores = two_days
    # alerts at 0.75: A 0.9 (genuine), B 0.8 (genuine), A 0.99 (genuine), C 0.9 (fraud), D 0.85 (fraud)
    result = threshold_metrics(frame, scores, threshold=0.75)
    assert result["precision_at_threshold"] == pytest.approx(2 / 5)
    assert result["recall_at_threshold"] == pytest.approx(2 / 4)
    assert result["alerts_per_day"] == pytest.approx(5 / 2)
    assert result["fraud_amount_caught"] == pytest.approx(70.0 + 90.0)
    assert result["fraud_amount_caught_share"] == pytest.approx(160.0 / 510.0)


def test_compute_metrics_uses_sklearn_ranking_metrics(two_days):
    frame, scores = two_days
    result = compute_metrics(scores, None, frame, threshold=0.75, top_k=2)
    labels = frame["tx_fraud"].to_numpy()
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert result["average_precision"] == pytest.approx(average_precision_score(labels, scores))
    assert result["card_precision_at_2"] == pytest.approx(0.75)
    assert result["transactions"] == 8 and result["frauds"] == 4 and result["fraud_rate"] == 0.5


def test_compute_metrics_with_explicit_labels_overrides_the_frame(two_days):
    frame, scores = two_days
    flipped = 1 - frame["tx_fraud"].to_numpy()
    result = compute_metrics(scores, flipped, frame, top_k=2)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(flipped, scores))


def test_ranking_metrics_are_nan_for_a_single_class(two_days):
    frame, scores = two_days
    genuine = frame.assign(tx_fraud=0)
    result = compute_metrics(scores, None, genuine, top_k=2)
    assert math.isnan(result["roc_auc"]) and math.isnan(result["average_precision"])
    assert result["card_precision_at_2"] == 0.0


def test_compute_metrics_rejects_mismatched_lengths(two_days):
    frame, scores = two_days
    with pytest.raises(ValueError, match="differ in length"):
        compute_metrics(scores[:-1], None, frame)
