"""Issue 14: a champion whose model artifact is truncated, garbled or missing stops `ml score`
with one line naming the version and the way out (roll back), and writes nothing."""

from __future__ import annotations

import pytest
from fixtures.damaged_model import DAMAGES, artifact_dir
from support.registry import Reg, add_dummy_version, add_trained_version
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle.promote import promote
from ml.lifecycle.validate import validate
from ml.platform.runtime import Runtime

PREDICTIONS = "scoring.predictions"


def _predictions(reg: Reg) -> int:
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        return len(wh.read(PREDICTIONS)) if wh.exists(PREDICTIONS) else 0


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_champion_artifact_is_one_line_naming_the_version_and_rollback(
    reg: Reg, damage: str
):
    # given a good champion, replaced by a version whose model artifact is then damaged
    good = add_trained_version(reg)
    assert validate(reg.rt).passed
    promote(reg.rt)
    bad = add_dummy_version(reg, alias=None)
    promote(reg.rt, version=bad, force=True, reason="test a damaged artifact")
    DAMAGES[damage](artifact_dir(reg.client(), reg.name, bad))

    # when `ml score` runs
    result = CliRunner().invoke(app, ["score"])

    # then it ends in one line (no traceback) naming the version and the rollback, exit 1
    import traceback

    traceback.print_exception(*result.exc_info)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == result.output.strip(), result.output
    assert f"{reg.name} v{bad}" in errors[0]
    assert "ml rollback --reason" in errors[0]
    # and wrote nothing
    assert _predictions(reg) == 0

    # and the way out works: after the rollback, the good champion scores
    assert CliRunner().invoke(app, ["rollback", "--reason", "damaged artifact"]).exit_code == 0
    assert reg.alias("champion") == good
    result = CliRunner().invoke(app, ["score"])
    assert result.exit_code == 0, result.output
    assert _predictions(reg) == len(reg.trained.frame)
