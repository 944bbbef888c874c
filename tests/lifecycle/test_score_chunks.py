"""`ml score` in chunks: it reads whole days, at most ``scoring.chunk_rows`` rows at a time, each
chunk one write, and a run that fails part-way resumes where it stopped."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from support.crash import failing_commit
from support.registry import Reg

from ml.lifecycle import score
from ml.platform.runtime import Runtime
from ml.platform.warehouse import DuckDBWarehouse

PREDICTIONS = "scoring.predictions"
D = dt.date(2018, 4, 1)


def _day(i: int) -> dt.date:
    return D + dt.timedelta(days=i)


def _predictions(reg: Reg) -> pd.DataFrame:
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        return wh.read(PREDICTIONS).sort_values("transaction_id", ignore_index=True)


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """The number of rows of every read of not-yet-scored rows."""
    sizes: list[int] = []
    real = DuckDBWarehouse.read_unmatched

    def counted(self, *args, **kwargs):
        frame = real(self, *args, **kwargs)
        sizes.append(len(frame))
        return frame

    monkeypatch.setattr(DuckDBWarehouse, "read_unmatched", counted)
    return sizes


def test_day_chunks_group_consecutive_days_up_to_the_chunk_size():
    # given rows per day, one day larger than a chunk
    rows = {_day(0): 400, _day(1): 500, _day(2): 200, _day(3): 1500, _day(4): 100, _day(5): 100}
    # when they are grouped into chunks of at most 1,000 rows
    chunks = score.day_chunks(rows, 1000)
    # then consecutive days fill a chunk, and the large day is a chunk of its own
    assert chunks == [
        (_day(0), _day(1)),
        (_day(2), _day(2)),
        (_day(3), _day(3)),
        (_day(4), _day(5)),
    ]
    assert score.day_chunks({}, 1000) == []


def test_score_reads_at_most_chunk_rows_at_a_time(
    reg: Reg, champion: str, trained, reads: list[int]
):
    # given a feature table of 45 days of ~600 rows each, and chunks of 2,000 rows
    frame = trained.frame
    reg.configure(scoring={"chunk_rows": 2000})

    # when everything is scored
    result = score.score(reg.rt)

    # then no read materialised more than a chunk, and every transaction was scored once
    assert len(reads) > 1
    assert max(reads) <= 2000
    assert sum(reads) == result.rows_read == result.rows_added == len(frame)
    predictions = _predictions(reg)
    assert predictions["transaction_id"].is_unique and len(predictions) == len(frame)
    assert predictions["scored_at"].nunique() == 1  # one instant for the run


def test_chunked_scores_equal_one_read(reg: Reg, champion: str, trained):
    # given the scores of a run in one read (chunk_rows null)
    reg.configure(scoring={"chunk_rows": None})
    score.score(reg.rt)
    one_read = _predictions(reg)

    # when the same champion scores again, from nothing, in chunks of 3,000 rows
    with reg.rt.warehouse() as wh:
        wh.con.execute(f"delete from {PREDICTIONS}")
    reg.configure(scoring={"chunk_rows": 3000})
    result = score.score(reg.rt)

    # then the predictions are the same, row for row
    chunked = _predictions(reg)
    assert result.alerts == int(one_read["is_alert"].sum())
    columns = ["transaction_id", "score", "is_alert", "model_version"]
    pd.testing.assert_frame_equal(chunked[columns], one_read[columns])


def test_a_run_that_fails_part_way_keeps_whole_days_and_resumes(
    reg: Reg, champion: str, trained, monkeypatch
):
    # given chunks of 5,000 rows and a warehouse that fails committing the second chunk
    frame = trained.frame
    reg.configure(scoring={"chunk_rows": 5000})

    # when scoring runs, fails, and runs again on a healthy warehouse
    with failing_commit(at=2), pytest.raises(RuntimeError, match="simulated crash"):
        score.score(reg.rt)
    kept = _predictions(reg)
    resumed = score.score(reg.rt)

    # then the failed run left only the first chunk: whole days, at most 5,000 rows
    days = frame.set_index("transaction_id")["tx_date"]
    kept_days = set(days.loc[kept["transaction_id"]])
    assert 0 < len(kept) <= 5000
    assert len(kept) == int(days.isin(kept_days).sum())
    # and the rerun scored exactly the rest: every transaction once
    assert resumed.rows_added == len(frame) - len(kept)
    predictions = _predictions(reg)
    assert predictions["transaction_id"].is_unique and len(predictions) == len(frame)
