"""Errors a user can cause. Each message is one line that says what to do next."""


class FraudopsError(Exception):
    """Base class: the CLI prints the message on one line and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(FraudopsError):
    """Settings or profiles are missing or invalid."""


class LandingError(FraudopsError):
    """Landing files are missing or unreadable."""


class DataNotReadyError(FraudopsError):
    """The warehouse does not (yet) hold the data a command needs."""


class ModelRegistryError(FraudopsError):
    """The model registry does not hold what a command needs (no champion, no challenger...)."""


class ValidationFailed(FraudopsError):
    """A challenger did not pass validation."""

    exit_code = 2


class TrackingError(FraudopsError):
    """The MLflow tracking store or model registry cannot be reached or used."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (for one-line errors)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
