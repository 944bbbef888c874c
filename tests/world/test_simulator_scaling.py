"""The simulator at other sizes (ml.simulate): compromises per day scaled with the population
(``simulation.compromise_scaling``), and the terminal adjacency a larger world is drawn from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.platform.settings import SimulationSettings
from ml.world.handbook import (
    COMPROMISED_CUSTOMERS_PER_DAY,
    COMPROMISED_TERMINALS_PER_DAY,
    compromised_per_day,
)
from ml.world.simulator import (
    WORLD_TABLES,
    _customer_profiles,
    _terminal_profiles,
    _terminals_within_radius,
    simulate,
)

TABLES = WORLD_TABLES


def _scenario_share(world, scenario: int) -> float:
    return float((world.transactions["tx_fraud_scenario"] == scenario).mean())


@pytest.mark.parametrize(
    ("customers", "terminals", "expected"),
    [
        (5_000, 10_000, (2, 3)),  # the handbook's world: its counts
        (50_000, 100_000, (20, 30)),  # 10x
        (12_500, 25_000, (5, 8)),  # 2.5x: 5 and 7.5, rounded half to even
        (100, 200, (1, 1)),  # a tiny world still has compromises
    ],
)
def test_population_scaling_counts_compromises_per_population(
    customers, terminals, expected
) -> None:
    # given a world of some size, with compromises scaled to its population
    settings = SimulationSettings(
        customers=customers, terminals=terminals, compromise_scaling="population"
    )
    # when the counts per day are worked out
    counts = compromised_per_day(settings)
    # then they are the handbook's counts times population / the default population
    assert counts == expected


def test_fixed_counts_are_the_default_and_ignore_the_population() -> None:
    # given the default settings and a 10x world without the knob
    default, large = SimulationSettings(), SimulationSettings(customers=50_000, terminals=100_000)
    # when the counts per day are worked out
    # then both use the handbook's fixed counts
    assert default.compromise_scaling == "fixed"
    expected = (COMPROMISED_TERMINALS_PER_DAY, COMPROMISED_CUSTOMERS_PER_DAY)
    assert compromised_per_day(default) == compromised_per_day(large) == expected


def test_population_scaling_leaves_the_default_world_unchanged() -> None:
    # given the default population over a short horizon, with and without the knob
    fixed = SimulationSettings(days=30, seed=4)
    scaled = fixed.model_copy(update={"compromise_scaling": "population"})
    # when both are simulated
    a, b = simulate(fixed), simulate(scaled)
    # then the worlds are identical
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_a_larger_world_keeps_the_default_fraud_mix_only_with_population_scaling() -> None:
    # given the default world and one with twice its cards and terminals, over 60 days
    default = SimulationSettings(days=60)
    double = {"customers": 2 * default.customers, "terminals": 2 * default.terminals}
    # when the larger world is simulated with fixed and with population-scaled compromises
    base = simulate(default)
    fixed = simulate(default.model_copy(update=double))
    scaled = simulate(default.model_copy(update={**double, "compromise_scaling": "population"}))
    # then with scaling it draws twice the compromises a day, and its terminal (2) and card (3)
    # fraud shares stay near the default world's; with fixed counts they are about halved
    per_day = scaled.compromised_terminals.groupby("day").size()
    assert (per_day == 2 * COMPROMISED_TERMINALS_PER_DAY).all()
    assert (
        scaled.compromised_customers.groupby("day").size() == 2 * COMPROMISED_CUSTOMERS_PER_DAY
    ).all()
    for scenario in (2, 3):
        share = _scenario_share(base, scenario)
        assert _scenario_share(scaled, scenario) == pytest.approx(share, rel=0.25)
        assert _scenario_share(fixed, scenario) < 0.7 * share
    assert scaled.transactions["tx_fraud"].mean() == pytest.approx(
        base.transactions["tx_fraud"].mean(), rel=0.15
    )


def test_terminal_adjacency_is_every_pair_within_the_radius_by_customer_then_terminal() -> None:
    # given a few customers and terminals
    rng = np.random.default_rng(11)
    customers, terminals, radius = _customer_profiles(60, rng), _terminal_profiles(500, rng), 12.0
    # when the adjacency is built
    offsets, neighbours = _terminals_within_radius(customers, terminals, radius)
    # then customer c's slice lists, in id order, exactly the terminals within the radius
    cxy = customers[["x_customer", "y_customer"]].to_numpy()
    txy = terminals[["x_terminal", "y_terminal"]].to_numpy()
    distance = np.sqrt(((cxy[:, None, :] - txy[None, :, :]) ** 2).sum(axis=2))
    assert len(offsets) == len(customers) + 1
    for c in range(len(customers)):
        expected = np.flatnonzero(distance[c] <= radius)
        np.testing.assert_array_equal(neighbours[offsets[c] : offsets[c + 1]], expected)
    assert neighbours.dtype == np.int32  # terminal ids: 4 bytes, not 8 (37.6M pairs at 10x)
