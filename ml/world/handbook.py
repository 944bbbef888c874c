"""The Fraud Detection Handbook's generative constants (chapter 3), shared by the simulator
(ml/world/simulator.py), its transaction draw (ml/world/draws.py) and the scheduled shifts of
the world (ml/world/shifts.py)."""

from __future__ import annotations

from ml.platform.settings import SimulationSettings

SECONDS_PER_DAY = 86_400
AREA_SIZE = 100.0
# Time of day (seconds) ~ N(mean, std), as in the handbook.
TIME_OF_DAY_MEAN = SECONDS_PER_DAY / 2
TIME_OF_DAY_STD = 20_000.0
# Smallest amount that does not round to 0.00.
MIN_AMOUNT = 0.005
# Fraud scenarios (handbook section 3.2.5).
SCENARIO_GENUINE, SCENARIO_LARGE_AMOUNT, SCENARIO_TERMINAL, SCENARIO_CUSTOMER = 0, 1, 2, 3
LARGE_AMOUNT_THRESHOLD = 220.0
COMPROMISED_TERMINALS_PER_DAY = 2
TERMINAL_COMPROMISE_DAYS = 28
COMPROMISED_CUSTOMERS_PER_DAY = 3
CUSTOMER_COMPROMISE_DAYS = 14
# The population the handbook's counts per day are for (its default world, and ours).
REFERENCE_TERMINALS = 10_000
REFERENCE_CUSTOMERS = 5_000
CUSTOMER_FRAUD_SHARE_DIVISOR = 3  # int(n / 3) of a compromised customer's transactions
CUSTOMER_FRAUD_AMOUNT_FACTOR = 5.0

# One independent random stream per part of the world (index into SeedSequence.spawn).
STREAMS = (
    "customers",
    "terminals",
    "transactions",
    "terminal_frauds",
    "customer_frauds",
    "reports",
)


def compromised_per_day(settings: SimulationSettings) -> tuple[int, int]:
    """Terminals and customers compromised a day (fraud scenarios 2 and 3).

    ``compromise_scaling`` "fixed": the handbook's 2 and 3, whatever the population (a world
    10x larger then has a tenth of the default world's terminal and card frauds, per
    transaction). "population": those counts times terminals / 10,000 and customers / 5,000,
    rounded, at least 1 — the default world's counts at the default size, 20 and 30 at 10x.
    Never more than the population.
    """
    terminals, customers = COMPROMISED_TERMINALS_PER_DAY, COMPROMISED_CUSTOMERS_PER_DAY
    if settings.compromise_scaling == "population":
        terminals = max(1, round(terminals * settings.terminals / REFERENCE_TERMINALS))
        customers = max(1, round(customers * settings.customers / REFERENCE_CUSTOMERS))
    return min(terminals, settings.terminals), min(customers, settings.customers)
