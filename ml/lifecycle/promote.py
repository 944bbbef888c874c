"""``ml promote`` and ``ml rollback``: move the ``champion`` alias, recoverably and audited.

Who, when and why of every promotion / rollback are tags on the versions and the params of an
MLflow run (``fraudops.command`` = ``promote`` / ``rollback``); the registered model's tag
``champion_history`` lists the champions in order, so that consecutive rollbacks walk back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ml.lifecycle import registry
from ml.lifecycle.model_card import card_blocker
from ml.lifecycle.reference import ensure_feature_reference
from ml.lifecycle.registry import (
    CHALLENGER,
    CHAMPION,
    NEEDS_CHAMPION,
    PREVIOUS_CHAMPION,
    current_user,
    now,
)
from ml.platform.errors import ModelRegistryError
from ml.platform.runtime import Runtime

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

#: Registered-model tag holding an alias change that has started and not finished (JSON).
PENDING_TAG = "promotion_pending"


@dataclass(frozen=True)
class AliasChange:
    """What :func:`promote` or :func:`rollback` did."""

    action: str  # "promote" | "rollback"
    model_name: str
    champion_version: str
    replaced_version: str | None  # the champion before the change
    previous_champion_version: str | None  # alias previous_champion after the change
    user: str
    reason: str
    forced: bool
    at: str
    run_id: str
    reference_rows_added: tuple[int, int]
    validation_status: str


def _record_run(change: AliasChange) -> str:
    import mlflow

    params = {
        k: ("" if v is None else str(v))
        for k, v in asdict(change).items()
        if k not in ("run_id", "reference_rows_added")
    }
    tags = {
        "fraudops.command": change.action,
        "model_name": change.model_name,
        "champion_version": change.champion_version,
    }
    with mlflow.start_run(run_name=f"{change.action} v{change.champion_version}", tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_dict(
            {**params, "reference_rows_added": list(change.reference_rows_added)},
            f"{change.action}.json",
        )
    return run.info.run_id


def promotion_blocker(version: ModelVersion, champion: ModelVersion | None) -> str | None:
    """Why ``version`` may not become champion without --force (``None`` if it may)."""
    tags = dict(version.tags or {})
    status = tags.get("validation_status")
    if status != "passed":
        return f"{version.name} v{version.version} has not passed validation (validation_status={status or 'missing'})"
    expected = str(champion.version) if champion is not None else "none"
    against = tags.get("validated_against", "none")
    if against != expected:
        return (
            f"{version.name} v{version.version} was validated against champion "
            f"{'v' + against if against != 'none' else '(none)'}, but the champion is now "
            f"{'v' + expected if expected != 'none' else '(none)'}"
        )
    return None


def _tag_version(client: Any, name: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _pending(client: Any, name: str) -> dict[str, str] | None:
    """The alias change a crash left unfinished (the ``PENDING_TAG`` of the registered model)."""
    from mlflow.exceptions import MlflowException

    try:
        raw = (client.get_registered_model(name).tags or {}).get(PENDING_TAG)
    except MlflowException:  # no such model yet: nothing pending (the caller says what is missing)
        return None
    return json.loads(raw) if raw else None


def promote(
    rt: Runtime,
    *,
    version: str | None = None,
    force: bool = False,
    reason: str | None = None,
    user: str | None = None,
    require_card: bool = False,
) -> AliasChange:
    """Move alias ``champion`` to the validated challenger (or ``version``).

    With ``require_card`` (``ml promote``) a version without its model card
    (ml/lifecycle/model_card.py) is refused too, unless ``force``.

    Refuses a version that has not passed :func:`validate` against the current champion unless
    ``force`` with a ``reason``. The replaced champion gets ``previous_champion``; the promoted
    version loses ``challenger``. Records who/when/why as version tags and an MLflow run, and
    makes sure the champion's training reference is in the warehouse.

    Recoverable: the change is written down first (the registered model's ``PENDING_TAG``),
    ``previous_champion`` and the history are set before ``champion`` moves, and the pending tag
    goes last. A promotion that crashed half-way is completed by running it again, and
    ``ml rollback`` refuses to act on it.
    """
    reason = (reason or "").strip()
    if force and not reason:
        raise ModelRegistryError("--force needs --reason '...' saying why validation is overridden")
    name = rt.model_name
    client = rt.registry()
    pending = _pending(client, name)
    if version is not None:
        candidate = registry.get_version(client, name, version)
    elif pending is not None:
        candidate = registry.get_version(client, name, pending["version"])
    else:
        candidate = registry.version_by_alias(client, name, CHALLENGER)
        if candidate is None:
            raise ModelRegistryError(
                f"model {name} has no version with alias '{CHALLENGER}'; run ml train and ml validate first "
                "(or pass --version)"
            )
    number = str(candidate.version)
    if pending is not None and pending["version"] != number:
        raise ModelRegistryError(
            f"the promotion of {name} v{pending['version']} did not finish; run ml promote --version "
            f"{pending['version']} to complete it first"
        )
    champion = registry.version_by_alias(client, name, CHAMPION)
    if pending is None and champion is not None and str(champion.version) == number:
        raise ModelRegistryError(f"{name} v{number} is already the champion")
    if pending is not None:  # resume: the champion before the change is the one it recorded
        replaced, blocker = pending["replaced"], pending["blocker"]
        who, at, reason = pending["user"], pending["at"], pending["reason"]
    else:
        blocker = promotion_blocker(candidate, champion)
        if require_card and not blocker:
            blocker = card_blocker(candidate)
        if blocker and not force:
            raise ModelRegistryError(f"{blocker}; run ml validate, or pass --force --reason '...'")
        replaced = str(champion.version) if champion is not None else None
        who, at, reason = user or current_user(), now(), reason or "passed validation"
        change = {
            "version": number,
            "replaced": replaced,
            "blocker": blocker,
            "user": who,
            "at": at,
            "reason": reason,
        }
        client.set_registered_model_tag(name, PENDING_TAG, json.dumps(change))
    added = ensure_feature_reference(rt, candidate)

    history = registry.history(client, name)
    if history[-1:] != [number]:  # (a resumed promotion may have written it already)
        if replaced and history[-1:] != [replaced]:
            history.append(replaced)
        history.append(number)
    if replaced:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, replaced)
    registry.set_history(client, name, history)
    client.set_registered_model_alias(name, CHAMPION, number)
    if CHALLENGER in (candidate.aliases or []):
        client.delete_registered_model_alias(name, CHALLENGER)
    change = AliasChange(
        action="promote",
        model_name=name,
        champion_version=number,
        replaced_version=replaced,
        previous_champion_version=replaced,
        user=who,
        reason=reason,
        forced=bool(blocker),
        at=at,
        run_id="",
        reference_rows_added=added,
        validation_status=dict(candidate.tags or {}).get("validation_status", "missing"),
    )
    run_id = _record_run(change)
    _tag_version(
        client,
        name,
        number,
        {
            "promoted_at": at,
            "promoted_by": who,
            "promotion_reason": change.reason,
            "promotion_forced": str(change.forced).lower(),
            "promotion_blocker": blocker or "none",
            "promotion_run_id": run_id,
            "replaced_champion": replaced or "none",
        },
    )
    if replaced:
        _tag_version(
            client, name, replaced, {"demoted_at": at, "demoted_by": who, "replaced_by": number}
        )
    client.delete_registered_model_tag(name, PENDING_TAG)
    return AliasChange(**{**asdict(change), "run_id": run_id, "reference_rows_added": added})


def rollback(rt: Runtime, *, reason: str, user: str | None = None) -> AliasChange:
    """Move ``champion`` back to ``previous_champion`` (one step back in the champion history)."""
    reason = (reason or "").strip()
    if not reason:
        raise ModelRegistryError(
            "ml rollback needs --reason '...' saying why the champion is withdrawn"
        )
    name = rt.model_name
    client = rt.registry()
    pending = _pending(client, name)
    if pending is not None:
        raise ModelRegistryError(
            f"the promotion of {name} v{pending['version']} did not finish; run ml promote --version "
            f"{pending['version']} to complete it, then roll back"
        )
    current = registry.version_by_alias(client, name, CHAMPION)
    if current is None:
        raise ModelRegistryError(f"model {name} has no champion to roll back; {NEEDS_CHAMPION}")
    previous = registry.version_by_alias(client, name, PREVIOUS_CHAMPION)
    if previous is None:
        raise ModelRegistryError(
            f"model {name} has no '{PREVIOUS_CHAMPION}' to roll back to; promote a known-good version with "
            "ml promote --version N --force --reason '...'"
        )
    restored, withdrawn = str(previous.version), str(current.version)
    added = ensure_feature_reference(rt, previous)

    history = registry.history(client, name)
    # walk back to the restored version; the one before it (if any) becomes previous_champion
    history = (
        history[: len(history) - history[::-1].index(restored)]
        if restored in history
        else [restored]
    )
    earlier = [v for v in history[:-1] if v not in (restored, withdrawn)]
    new_previous = earlier[-1] if earlier else None
    who, at = user or current_user(), now()
    client.set_registered_model_alias(name, CHAMPION, restored)
    if new_previous:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, new_previous)
    else:
        client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    registry.set_history(client, name, history)
    change = AliasChange(
        action="rollback",
        model_name=name,
        champion_version=restored,
        replaced_version=withdrawn,
        previous_champion_version=new_previous,
        user=who,
        reason=reason,
        forced=False,
        at=at,
        run_id="",
        reference_rows_added=added,
        validation_status=dict(previous.tags or {}).get("validation_status", "missing"),
    )
    run_id = _record_run(change)
    _tag_version(
        client,
        name,
        withdrawn,
        {
            "rolled_back_at": at,
            "rolled_back_by": who,
            "rollback_reason": reason,
            "rollback_run_id": run_id,
        },
    )
    _tag_version(
        client, name, restored, {"restored_at": at, "restored_by": who, "restore_reason": reason}
    )
    return AliasChange(**{**asdict(change), "run_id": run_id, "reference_rows_added": added})
