"""Champion / challenger: a tuned model replaces the active one only if it is better.

The champion is the registry's served tuned model (`Registry.champion`). Its configuration
is fitted again on the challenger's validation folds and scored with the same metric, so
both numbers come from the same data, split and code (a stored number from another split
would not be comparable). If the champion cannot be re-fitted (its model type is gone, or it
fails), its recorded validation value for the same metric is used. The challenger is
promoted only if its value is strictly higher (by more than `min_gain`).

Every challenger is saved as a version (so it can be inspected, or activated by hand);
only a winner is activated.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from shelfwise.artifacts.registry import Registry
from shelfwise.errors import ShelfwiseError
from shelfwise.evaluation.protocols import ProtocolData
from shelfwise.recommenders.base import Recommender, create
from shelfwise.tuning.objective import Objective

log = logging.getLogger("shelfwise.tuning")


@dataclass(frozen=True)
class Decision:
    """Why a challenger was or was not promoted."""

    promoted: bool
    challenger_value: float
    champion_version: str | None
    champion_model: str | None
    champion_value: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def champion_value(
    store: Registry, objective: Objective
) -> tuple[str | None, str | None, float | None, str]:
    """(version, model, validation value, how it was obtained) of the active version."""
    champion = store.champion()
    if champion is None:
        return None, None, None, "no active model"
    try:
        config = create(champion.model, **champion.config).config
        value = objective.evaluate(champion.model, config)
        return champion.version, champion.model, value, "re-fitted on the same validation folds"
    except ShelfwiseError as exc:
        recorded = champion.metrics.get("validation", {}).get(objective.metric)
        log.warning("champion %s could not be re-fitted (%s)", champion.version, exc)
        if isinstance(recorded, int | float):
            return champion.version, champion.model, float(recorded), "its recorded value"
        return champion.version, champion.model, None, f"unscorable: {exc}"


def decide(
    challenger: float, champion: float | None, champion_version: str | None, min_gain: float = 0.0
) -> tuple[bool, str]:
    """(promote?, reason) for a challenger value against a champion value."""
    if champion_version is None:
        return True, "no active model yet"
    if champion is None or not math.isfinite(champion):
        return False, f"the active model {champion_version} could not be scored; kept it"
    if not math.isfinite(challenger):
        return False, "the challenger has no finite validation value"
    if challenger > champion + min_gain:
        return True, f"challenger {challenger:.4f} > champion {champion:.4f}"
    return False, f"challenger {challenger:.4f} <= champion {champion:.4f}"


def challenge(
    store: Registry,
    objective: Objective,
    challenger_value: float,
    min_gain: float = 0.0,
) -> Decision:
    """Compare a challenger's validation value with the active model's (see module doc)."""
    version, model, value, how = champion_value(store, objective)
    promoted, reason = decide(challenger_value, value, version, min_gain)
    if version is not None:
        reason += f" (champion {version} {model}: {how})"
    return Decision(promoted, challenger_value, version, model, value, reason)


def save_and_promote(
    store: Registry,
    model: Recommender,
    decision: Decision,
    metrics: dict[str, Any],
    data: ProtocolData,
    dataset: str,
    extra: dict[str, Any],
) -> str:
    """Save the challenger as a new version; activate it if the decision says so."""
    return store.save_model(
        model,
        metrics,
        dataset=dataset,
        items=data.items,
        users=data.users,
        extra={**extra, "promotion": decision.to_dict()},
        activate=decision.promoted,
    )
