"""Option defaults read from `Settings()` only when the parsed command line uses them.

Building the `shelfwise` parser must not construct `Settings()` (importing
pydantic-settings and reading the environment costs a few hundred ms of CPU that
`shelfwise --help` or `shelfwise search --store ... --artifacts ...` do not need), so an
option whose default comes from the settings gets a `FromSettings` placeholder;
`resolve` replaces the placeholders left in the parsed namespace, constructing
`Settings()` once and only when one is left.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["FromSettings", "resolve"]


class FromSettings:
    """The default of an option: the setting at the dotted `path` of `Settings()`
    (`"paths.artifacts"`), passed through `convert` unless it is None."""

    def __init__(self, path: str, convert: Callable[[Any], Any] | None = None) -> None:
        self.path = path
        self.convert = convert

    def value(self, settings: Any) -> Any:
        """This default read from `settings`."""
        value = settings
        for part in self.path.split("."):
            value = getattr(value, part)
        return value if value is None or self.convert is None else self.convert(value)

    def __repr__(self) -> str:
        return f"FromSettings({self.path!r})"


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with every `FromSettings` placeholder replaced by its setting (in place)."""
    pending = {k: v for k, v in vars(args).items() if isinstance(v, FromSettings)}
    if pending:
        from shelfwise.settings import Settings

        settings = Settings()
        for name, default in pending.items():
            setattr(args, name, default.value(settings))
    return args
