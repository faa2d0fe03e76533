"""Query-time synonyms from a plain-text file.

The format follows Solr's `synonyms.txt`::

    # a comment
    tv, television, telly            equivalent: each one finds the others
    sofa, couch
    cell phone, mobile phone         phrases work too
    laptop => notebook, ultrabook    one-way: "laptop" also finds "notebook", not back

Synonyms are applied to the query only (the index is left alone, so editing the file needs
no re-index). Phrases are analysed with the index's analyzer, so "Televisions" matches the
rule for "television" once both are stemmed. Matching is greedy, longest phrase first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shelfwise.errors import DataError
from shelfwise.search.analysis import Analyzer

__all__ = ["SynonymMatch", "Synonyms"]


@dataclass(frozen=True)
class SynonymMatch:
    """A phrase found in the query at terms[start:end] and what it may be replaced by."""

    start: int
    end: int
    phrase: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]


@dataclass
class Synonyms:
    """Equivalence groups and one-way rules, as written in the file."""

    equivalent: list[list[str]] = field(default_factory=list)
    one_way: list[tuple[list[str], list[str]]] = field(default_factory=list)
    _compiled: dict[tuple[str, ...], list[tuple[str, ...]]] | None = field(
        default=None, repr=False, compare=False
    )
    _analyzer: Analyzer | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, lines: Iterable[str], source: str = "synonyms") -> Synonyms:
        """Read rules; a malformed line raises `DataError` naming the line."""
        out = cls()
        for number, raw in enumerate(lines, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if "=>" in line:
                parts = line.split("=>")
                if len(parts) != 2:
                    raise DataError(f"{source}, line {number}: use one '=>' per rule: {raw!r}")
                lhs, rhs = (_phrases(p) for p in parts)
                if not lhs or not rhs:
                    raise DataError(
                        f"{source}, line {number}: both sides of '=>' need a phrase: {raw!r}"
                    )
                out.one_way.append((lhs, rhs))
            else:
                group = _phrases(line)
                if len(group) < 2:
                    raise DataError(
                        f"{source}, line {number}: an equivalence needs two or more phrases "
                        f"separated by commas (or 'a => b' for a one-way rule): {raw!r}"
                    )
                out.equivalent.append(group)
        return out

    @classmethod
    def from_file(cls, path: Path) -> Synonyms:
        """Read a synonyms file (UTF-8)."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"synonyms file {path} does not exist")
        return cls.parse(path.read_text(encoding="utf-8").splitlines(), source=str(path))

    def __len__(self) -> int:
        return len(self.equivalent) + len(self.one_way)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "equivalent": self.equivalent,
            "one_way": [[lhs, rhs] for lhs, rhs in self.one_way],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Synonyms:
        """The rules `to_dict` wrote."""
        return cls(
            equivalent=[list(g) for g in data.get("equivalent", [])],
            one_way=[(list(lhs), list(rhs)) for lhs, rhs in data.get("one_way", [])],
        )

    def compile(self, analyzer: Analyzer) -> dict[tuple[str, ...], list[tuple[str, ...]]]:
        """Phrase (analysed terms) -> alternative phrases (analysed terms)."""
        if self._compiled is not None and self._analyzer is analyzer:
            return self._compiled
        rules: dict[tuple[str, ...], list[tuple[str, ...]]] = {}

        def add(src: tuple[str, ...], dst: tuple[str, ...]) -> None:
            if src and dst and src != dst:
                alts = rules.setdefault(src, [])
                if dst not in alts:
                    alts.append(dst)

        for group in self.equivalent:
            phrases = [tuple(analyzer.terms(p)) for p in group]
            for a in phrases:
                for b in phrases:
                    add(a, b)
        for lhs, rhs in self.one_way:
            for a in (tuple(analyzer.terms(p)) for p in lhs):
                for b in (tuple(analyzer.terms(p)) for p in rhs):
                    add(a, b)
        self._compiled, self._analyzer = rules, analyzer
        return rules

    def match(self, terms: Sequence[str], analyzer: Analyzer) -> list[SynonymMatch]:
        """Non-overlapping rule matches in a query's terms, left to right, longest first."""
        rules = self.compile(analyzer)
        if not rules:
            return []
        longest = max(len(k) for k in rules)
        out: list[SynonymMatch] = []
        i = 0
        while i < len(terms):
            for n in range(min(longest, len(terms) - i), 0, -1):
                phrase = tuple(terms[i : i + n])
                alts = rules.get(phrase)
                if alts:
                    out.append(SynonymMatch(i, i + n, phrase, tuple(alts)))
                    i += n
                    break
            else:
                i += 1
        return out


def _phrases(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]
