"""The model a server scores with: ``models:/<name>@champion``, followed while it moves.

A :class:`ChampionWatcher` holds one :class:`ServedModel` (the loaded version, its alias and
run). A background thread asks the registry every ``serving.poll_seconds`` where the alias
points; when it moved (a promotion, a rollback), that thread downloads and loads the new
version, then replaces the reference in one assignment. A request reads ``watcher.current``
once and scores all its rows with that model, so a swap happens between requests and no request
sees half of one; the old model is freed when the last request using it returns.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.lifecycle.loaded_model import LoadedModel, SignatureMismatchError, load_model
from ml.lifecycle.registry import CHAMPION, NEEDS_CHAMPION, version_by_alias
from ml.platform.errors import ModelRegistryError
from ml.serving.periodic import Periodic

log = logging.getLogger("ml.serving")


@dataclass(frozen=True)
class ServedModel:
    """A loaded model version and where its input columns sit among the state's features."""

    model: LoadedModel
    alias: str
    run_id: str | None
    feature_index: np.ndarray
    threads: Any = None  # threadpoolctl.ThreadpoolController of the loaded libraries

    @property
    def version(self) -> str:
        return self.model.version

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Scores of rows of state features (``FeatureBatch.values``) on one OpenMP thread.

        Input: the sklearn flavor gets the float64 matrix itself, in the signature's column
        order (what ``data.feature_matrix`` gives ``ml score``, so the same values): scikit-
        learn's checks of a DataFrame (column names and dtypes through pandas and narwhals)
        cost ~4 ms of a 5 ms single-row request (cProfile of the server's path, bench world,
        load average 10 on 2 cores). Other flavors get a DataFrame (pyfunc enforces its schema).

        Threads: a request holds one to a few thousand rows; OpenMP's threads cost more than
        they give, and on a busy machine they spin-wait on each other at every tree (one row of
        a HistGradientBoosting champion: 72 ms with the default threads, 3 ms with one, load
        average 12 on 2 cores). OpenMP limits are per calling thread, so the limit is set
        around each call (a ThreadpoolController made once: ~30 us; ``threadpool_limits``,
        which ``LoadedModel.predict_matrix`` uses, rescans the loaded libraries: ~6 ms).
        """
        x = np.ascontiguousarray(features[:, self.feature_index])
        if self.model.flavor != "sklearn":
            x = pd.DataFrame(x, columns=self.model.columns, copy=False)
        if self.threads is None:
            return np.asarray(self.model._predict(x), dtype="float64")
        with self.threads.limit(limits=1, user_api="openmp"):
            return np.asarray(self.model._predict(x), dtype="float64")


def served_model(
    model: LoadedModel, alias: str, run_id: str | None, state_columns: Sequence[str]
) -> ServedModel:
    """Check that the state computes every input of ``model`` and index them."""
    missing = [c for c in model.columns if c not in state_columns]
    if missing:
        raise SignatureMismatchError(
            f"{model.name} v{model.version} expects column(s) {', '.join(missing)} that the "
            "online state does not compute; promote a model trained on gold.transaction_features"
        )
    from threadpoolctl import ThreadpoolController

    # the sklearn flavor scores a bare matrix whose columns are the signature's (see scores)
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    index = np.array([list(state_columns).index(c) for c in model.columns], dtype=np.intp)
    return ServedModel(model, alias, run_id, index, ThreadpoolController())


class ChampionWatcher:
    """``name@alias``, loaded, and a thread that swaps in a new version when the alias moves."""

    def __init__(
        self,
        client_factory: Callable[[], object],
        name: str,
        state_columns: Sequence[str],
        poll_seconds: float,
        alias: str = CHAMPION,
        loader: Callable[[str, str], LoadedModel] = load_model,
    ):
        self._client_factory = client_factory
        self.name = name
        self.alias = alias
        self._columns = tuple(state_columns)
        self._loader = loader
        self._current: ServedModel | None = None
        self._poller = Periodic("champion-poll", poll_seconds, self._poll)
        self.swaps = 0
        self.last_error: str | None = None

    @property
    def current(self) -> ServedModel:
        served = self._current
        if served is None:
            raise ModelRegistryError(f"no model loaded yet for {self.name}@{self.alias}")
        return served

    @property
    def ready(self) -> bool:
        return self._current is not None

    def _champion(self):
        version = version_by_alias(self._client_factory(), self.name, self.alias)
        if version is None:
            raise ModelRegistryError(f"{self.name} has no @{self.alias} version; {NEEDS_CHAMPION}")
        return version

    def load(self) -> ServedModel:
        """Load the version the alias points to now (start-up)."""
        version = self._champion()
        model = self._loader(self.name, str(version.version))
        self._current = served_model(model, self.alias, version.run_id, self._columns)
        return self._current

    def poll_once(self) -> bool:
        """Swap in the alias's version if it moved; True if it did."""
        version = self._champion()
        if self._current is not None and str(version.version) == self._current.version:
            return False
        model = self._loader(self.name, str(version.version))
        previous = self._current.version if self._current else None
        self._current = served_model(model, self.alias, version.run_id, self._columns)
        self.swaps += 1
        log.info("%s@%s: v%s -> v%s", self.name, self.alias, previous, version.version)
        return True

    def _poll(self) -> None:
        try:
            self.poll_once()
            self.last_error = None
        except Exception as exc:  # keep serving the current model; retry at the next poll
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("champion poll failed (still serving v%s): %s", self._version(), exc)

    def _version(self) -> str | None:
        return self._current.version if self._current else None

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
