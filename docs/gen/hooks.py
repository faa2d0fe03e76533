"""MkDocs hooks: benchmark tables rendered from `benchmarks/results/*.json` at build time.

A page line `<!-- bench: NAME -->` is replaced by the table `bench_tables.render(NAME)`, so
the figures on the site are always those of the committed results files. An unknown name
or a missing results file fails the build, naming it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_tables

MARKER = re.compile(r"^<!-- bench: ([a-z0-9_]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace every benchmark marker of the page by its table."""

    def table(match: re.Match[str]) -> str:
        try:
            return bench_tables.render(match.group(1))
        except (KeyError, FileNotFoundError) as exc:
            raise PluginError(f"{page.file.src_path}: {exc}") from exc

    return MARKER.sub(table, markdown)
