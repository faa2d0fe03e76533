"""One router per resource; `create_app` includes them all."""

from shelfwise.serve.routers import (
    admin,
    events,
    experiments,
    items,
    models,
    ops,
    recommendations,
    search,
    users,
)

ROUTERS = (
    search.router,
    recommendations.router,
    items.router,
    events.router,
    users.router,
    models.router,
    admin.router,
    experiments.router,
    ops.router,
)

__all__ = ["ROUTERS"]
