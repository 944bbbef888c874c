"""Peak memory of ``ml train`` by phase, in one process: where a larger world's memory goes.

``bench_scale.py`` measures each step's peak as a whole; this runs ``ml train`` in-process on a
world that bench_scale built (``--world``: its ``scale-1x`` or ``scale-10x`` folder, kept with
``--workdir``) and samples the process's resident memory every 20 ms, attributing each sample to
the phase running then: the reads of the windows, the split, the reference distributions, each
candidate's fit, evaluation and logging. A phase's peak includes what earlier phases left
allocated. This is how the 10x world's ``ml train`` peak was traced to its reads
(bench/README.md, "Results: scale, with ml's reads bounded").

    .venv/bin/python bench/bench_scale.py --sections scale --scale-until dbt --workdir /tmp/scale
    .venv/bin/python bench/profile_train.py --world /tmp/scale/scale-10x
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_scale import PAGE, World

MB = 1024 * 1024


class PhasePeaks:
    """Peak RSS of this process per named phase, sampled by a daemon thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.phase = "start-up"
        self.peaks: dict[str, float] = {}
        self._interval = interval
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            with open("/proc/self/statm", "rb") as statm:
                rss = int(statm.read().split()[1]) * PAGE / MB
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            time.sleep(self._interval)

    def wrap(self, module: Any, name: str) -> None:
        """Attribute the samples taken while ``module.name`` runs to the phase ``name``."""
        function = getattr(module, name)

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            outer, self.phase = self.phase, name
            try:
                return function(*args, **kwargs)
            finally:
                self.phase = f"after {name}" if outer == "train" else outer

        setattr(module, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="a bench_scale world folder")
    args = parser.parse_args()
    world = World(args.world.name, 0, 0, 0, args.world.resolve())
    if not world.warehouse.exists():
        raise SystemExit(f"{world.warehouse} does not exist: build the world with bench_scale.py")
    scratch = Path(tempfile.mkdtemp(prefix="profile-train-"))
    env = world.env()
    # a tracking store of its own, so the world's registry is left as bench_scale made it
    env["FRAUDOPS__MLFLOW__TRACKING_URI"] = f"sqlite:///{scratch}/mlflow.db"
    env["FRAUDOPS__MLFLOW__ARTIFACT_LOCATION"] = str(scratch / "mlartifacts")
    os.environ.update(env)

    peaks = PhasePeaks()
    from ml.lifecycle import data, reference, train
    from ml.platform.runtime import Runtime
    from ml.platform.settings import load_settings

    for module, names in (
        (data, ("read_features", "read_frauds", "training_set")),
        (reference, ("compute_reference", "ensure_feature_reference")),
        (
            train,
            ("_dataset", "fit_candidate", "evaluate_candidate", "log_model", "feature_importance"),
        ),
    ):
        for name in names:
            peaks.wrap(module, name)
    peaks.phase = "train"
    result = train.train(Runtime.build(load_settings()))
    time.sleep(0.1)
    print(f"{world.name}: {result.train_rows:,} training rows, {result.test_rows:,} test rows")
    print(f"{'phase':28} {'peak RSS MB':>12}")
    for phase, peak in peaks.peaks.items():
        print(f"{phase:28} {peak:12,.0f}")
    print(f"{'whole run':28} {max(peaks.peaks.values()):12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
