"""The documentation: README.md stays short, and no relative link points nowhere.

Links into pages that `docs/gen/` generates at build time (reference, plots) count as
existing when `docs/gen/manifest.py` lists them. The full check, anchors included, is
`mkdocs build --strict` in `make docs`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_LIMIT = 10_000

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _gen_module(name: str) -> ModuleType:
    """A module of docs/gen/ (a folder of build scripts, not a package)."""
    gen = str(DOCS / "gen")
    if gen not in sys.path:
        sys.path.insert(0, gen)
    spec = importlib.util.spec_from_file_location(name, DOCS / "gen" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links and images outside code, without #fragments."""
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    out = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, ... and anchors within the page
        out.append(target.split("#", 1)[0])
    return out


def broken_links(page: Path, generated: set[str]) -> list[str]:
    """The relative links of `page` that reach neither a file nor a generated page."""
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        resolved = (page.parent / target).resolve()
        if resolved.exists():
            continue
        try:
            inside_docs = resolved.relative_to(DOCS.resolve()).as_posix()
        except ValueError:
            inside_docs = None
        if inside_docs not in generated:
            broken.append(target)
    return broken


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "gen" not in p.parts)]


def test_readme_is_at_most_10000_characters() -> None:
    size = len((ROOT / "README.md").read_text(encoding="utf-8"))
    assert size <= README_LIMIT, (
        f"README.md has {size:,} characters (limit {README_LIMIT:,}): move detail into docs/"
    )


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file(page: Path) -> None:
    generated = _gen_module("manifest").generated_paths()
    broken = broken_links(page, generated)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"


def test_the_link_check_finds_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](page.md) [gone](missing.md#part) ![img](nope.png) [web](https://example.org)\n"
        "`[code](ignored.md)`\n```\n[fenced](ignored.md)\n```\n[anchor](#here)\n"
    )
    assert broken_links(page, set()) == ["missing.md", "nope.png"]


def test_readme_links_into_the_docs_site() -> None:
    links = relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "docs/quickstart.md" in links
    assert "docs/concepts/architecture.md" in links


def test_generated_pages_cover_every_package() -> None:
    manifest = _gen_module("manifest")
    generated = manifest.generated_paths()
    assert {"reference/cli.md", "reference/http.md", "reference/settings.md"} <= generated
    for package in ("search", "store", "recommenders"):
        assert f"reference/python/shelfwise.{package}.md" in generated
    assert "shelfwise.search.bm25" in manifest.submodules("shelfwise.search")
    assert f"{manifest.PLOT_DIR}/tuning_compare.png" in generated


def test_decision_notes_are_dated_and_indexed() -> None:
    notes = sorted(p.name for p in (DOCS / "decisions").glob("*.md") if p.name != "index.md")
    assert notes, "docs/decisions/ has no design notes"
    index = (DOCS / "decisions" / "index.md").read_text(encoding="utf-8")
    for name in notes:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[a-z0-9-]+\.md", name), (
            f"docs/decisions/{name}: name it YYYY-MM-DD-topic.md"
        )
        assert f"({name})" in index, f"docs/decisions/{name} is not linked from its index.md"


def test_every_benchmark_marker_renders_from_the_results() -> None:
    tables = _gen_module("bench_tables")
    marker = re.compile(r"^<!-- bench: ([a-z0-9_]+) -->$", re.MULTILINE)
    used = {m for p in DOCS.rglob("*.md") for m in marker.findall(p.read_text(encoding="utf-8"))}
    assert "movielens" in used
    for name in sorted(used):
        table = tables.render(name)
        assert table.count("\n|") >= 2, f"benchmark table {name!r} rendered no rows"
    # the figures are those of the results file, whatever run it holds
    results = json.loads((ROOT / "benchmarks/results/movielens100k_recommenders.json").read_text())
    ease = results["results"]["ease"]
    half = {c: (ease["ci95"][c][1] - ease["ci95"][c][0]) / 2 for c in ("MAP", "nDCG@k")}
    row = (
        f"| **shelfwise ease** | {ease['MAP']:.4f} ± {half['MAP']:.4f} | "
        f"{ease['nDCG@k']:.4f} ± {half['nDCG@k']:.4f} |"
    )
    assert row in tables.render("movielens")  # with the 95% interval over seeds
    with pytest.raises(KeyError, match="no benchmark table"):
        tables.render("no_such_table")
