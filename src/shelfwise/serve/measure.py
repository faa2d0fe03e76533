"""The API's side of impressions and experiments: one `LiveExperiments` per app.

Handlers call `decide` before answering (the running experiment and the user's variant for
this list type) and `served` with what they answer; `served` logs the impression off the
request path and returns the request id the response carries (and the list in the order
shown, which exploration may change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from shelfwise.experiments.live import Decision, LiveExperiments, Served
from shelfwise.serve.deps import Services

__all__ = ["Decision", "Served", "experiments_of", "served"]

T = TypeVar("T")


def experiments_of(services: Services) -> LiveExperiments:
    """The app's live experiments (made on first use if the app was built without)."""
    live = services.extra.get("experiments")
    if live is None:
        live = services.extra.setdefault(
            "experiments",
            LiveExperiments(services.store, impressions=services.settings.impressions),
        )
    assert isinstance(live, LiveExperiments)
    return live


def served(
    services: Services,
    list_type: str,
    items: Sequence[T],
    ids: Sequence[str],
    user_id: str | None = None,
    decision: Decision | None = None,
    exposed: bool = True,
    **fields: object,
) -> tuple[str, list[T]]:
    """Log a served list; (its request id, the items in the order shown)."""
    done = experiments_of(services).served(
        list_type,
        items,
        ids,
        user_id,
        decision,
        exposed,
        **fields,  # type: ignore[arg-type]
    )
    return done.request_id, done.items
