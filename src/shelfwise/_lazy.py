"""Package faces whose names are imported on first use (PEP 562), so importing a package
stays cheap: `import shelfwise` or `shelfwise.search` loads no torch, faiss or lightgbm."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`: `homes` maps each public name to the module
    that defines it, relative to the package (`"service"`) or absolute (`"shelfwise.x"`).
    A name is imported once and then cached in the package's `namespace`."""

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = home if home.startswith("shelfwise") else f"{package}.{home}"
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *homes})

    return getattr_, dir_
