"""What the documentation build generates, in one place.

Read by `reference.py` (which writes these pages at build time) and by `tests/test_docs.py`
(which accepts links to them although no such file is committed). Nothing here imports
Shelfwise: the lists come from the source tree and from `benchmarks/results/`.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "shelfwise"
RESULTS = ROOT / "benchmarks" / "results"

#: Fixed generated pages (paths inside docs/).
FIXED_PAGES = (
    "reference/cli.md",
    "reference/http.md",
    "reference/settings.md",
    "reference/python/index.md",
)
#: Where the benchmark plots are copied inside the site.
PLOT_DIR = "benchmarks/img"


def _public(path: Path) -> bool:
    return not path.name.startswith("_") or path.name == "__init__.py"


def python_units() -> list[str]:
    """Dotted names with a Python API page: each sub-package and each top-level module."""
    units = []
    for path in sorted(PACKAGE.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file():
            units.append(f"shelfwise.{path.name}")
        elif path.suffix == ".py" and not path.name.startswith("_"):
            units.append(f"shelfwise.{path.stem}")
    return units


def submodules(unit: str) -> list[str]:
    """The public modules inside a sub-package (recursively), in file order."""
    base = SRC.joinpath(*unit.split("."))
    if not base.is_dir():
        return []
    out = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if any(p.startswith("_") for p in parts[:-1]) or not _public(path):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name != unit:
            out.append(name)
    return out


def plots() -> list[str]:
    """The PNG plots the benchmark scripts wrote."""
    return sorted(p.name for p in RESULTS.glob("*.png"))


def generated_paths() -> set[str]:
    """Every path (relative to docs/) that exists only in the built site."""
    pages = set(FIXED_PAGES)
    pages.update(f"reference/python/{unit}.md" for unit in python_units())
    pages.update(f"{PLOT_DIR}/{name}" for name in plots())
    return pages
