"""Query understanding from the catalogue's own vocabularies: price intent, brand and
category mentions.

`QueryUnderstanding.read(query)` returns an `Understood`: the text left to search and what
was detected.

* **Price intent** (English phrases, a small list of language, not of the catalogue):
  "under 50", "below $30", "less than 20", "up to 100", "over 20", "at least 10",
  "between 20 and 40", "from 20 to 40", "$20-$40". The phrase is removed from the text and
  becomes a price filter. A number followed by a unit ("under 500ml", "65 inch") is no
  price: units stay query terms.
* **Cheap words** ("cheap", "budget", "affordable", ...) are removed from the text and
  become a soft preference (see `SearchConfig.understand_cheap`).
* **Brand and category mentions**: word n-grams of the query that equal (after analysis)
  a brand label or a category path segment of the catalogue. The words stay in the text;
  the mention boosts the brand's / category's products, or filters to them when the query
  is nothing but the mention. Of several category mentions the one holding the query's
  head word wins: the last word, or the last before a "for" / "with" / "without" tail
  (an English noun phrase ends in the thing asked for: "tea tree oil shampoo" asks for a
  shampoo, not an oil; "serum for face" for a serum). `Understood.category_head` says
  whether the mention holds it (`SearchConfig.category_head_only` boosts only then).
* **Head word**: `Understood.head` is the analysed head word (outside a brand mention);
  `product_heads` reads a product's head words from its title (the last word of the
  title's name part: before the first comma, bracket, dash, size number or "for" / "with"
  tail) and its category leaf (the last word of each "&"-joined part: "Makeup Brushes &
  Tools" -> brush, tool); the name part's other words qualify the head. So "sigma
  brushes" can prefer brushes and leave brush holders and brush cleaning gloves, whose
  names hold "brush" only as a qualifier, below them (`SearchConfig.head_boost`).

Chinese (CJK) queries are not read here: their analysis is unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shelfwise.search.analysis import Analyzer, has_cjk

__all__ = [
    "CHEAP_WORDS",
    "HEAD_TAIL_WORDS",
    "ProductHeads",
    "QueryUnderstanding",
    "UnderstandingOptions",
    "Understood",
    "head_position",
    "leaf_heads",
    "name_terms",
    "product_heads",
]

CHEAP_WORDS = frozenset(
    {"cheap", "cheaper", "cheapest", "budget", "inexpensive", "affordable", "lowcost", "bargain"}
)
"""Words asking for low prices (language, not catalogue)."""

_CUR = r"(?:[$€£]\s?)?"
_NUM = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
_SUFFIX = r"(?:\s?(?:dollars?|usd|bucks|euros?|eur|pounds?|gbp|[$€£]))?"
_AMOUNT = _CUR + _NUM + _SUFFIX
_MAX_WORDS = (
    r"under|below|less\s+than|cheaper\s+than|up\s+to|upto|at\s+most|max|maximum|"
    r"no\s+more\s+than|<=?"
)
_MIN_WORDS = r"over|above|more\s+than|at\s+least|min|minimum|starting\s+at|>=?"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("range", re.compile(rf"\bbetween\s+{_AMOUNT}\s*(?:and|to|-)\s*{_AMOUNT}")),
    ("range", re.compile(rf"\bfrom\s+{_AMOUNT}\s*(?:to|-)\s*{_AMOUNT}")),
    ("range", re.compile(rf"[$€£]\s?{_NUM}\s*(?:-|to)\s*[$€£]\s?{_NUM}")),
    ("max", re.compile(rf"(?:(?<=\s)|^)(?:{_MAX_WORDS})\s*{_AMOUNT}")),
    ("min", re.compile(rf"(?:(?<=\s)|^)(?:{_MIN_WORDS})\s*{_AMOUNT}")),
]
_UNIT_AFTER = re.compile(
    r"\s*(?:inch(?:es)?|in\b|\"|cm|mm|m\b|ml|l\b|ltr|litres?|liters?|g\b|gr|grams?|kg|mg|oz|"
    r"lbs?|gb|tb|mb|kw|w\b|watts?|v\b|volts?|mah|hz|pack|pcs|pieces?|count|ct\b|x\b|%|ft|feet)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+(?:['\u2019\u02bc.\-][^\W_]+)*")
HEAD_TAIL_WORDS = frozenset({"for", "with", "without"})
"""Words that start a noun phrase's tail: the head word is the last one before them."""


_NAME_CUT = re.compile(
    r"[,(\[{|:;/+]|\s[-\u2013\u2014]\s|\s(?:for|with|without|by|from|of)\s|\s\d",
    re.IGNORECASE,
)
"""Where a product title's name part ends (its head word is the last word before it)."""
_LEAF_SPLIT = re.compile(r"\s*(?:&|,|/|\band\b)\s*", re.IGNORECASE)


def name_terms(analyzer: Analyzer, text: str) -> list[str]:
    """The analysed words of a product title's name part: the words before the first
    comma, bracket, dash, size number or "for" / "with" / "by" / "of" tail ("Tigi Shine
    Hairspray 9.5 oz" -> tigi shine hairspray); the last is the title's head word."""
    return analyzer.terms(_NAME_CUT.split(text, maxsplit=1)[0])


@dataclass(frozen=True)
class ProductHeads:
    """What a product is, read from its title and category (`product_heads`)."""

    heads: frozenset[str]
    """The title's head word and the category leaf's parts' head words."""
    name: tuple[str, ...]
    """The analysed words of the title's name part, up to its head word."""

    def match(self, head: str, nouns: frozenset[str]) -> int:
        """1 when `head` is one of the product's head words; -1 when its name holds `head`
        only before another product noun (`nouns`: the catalogue's category head words),
        so `head` qualifies what the product is ("brush" in "Sigma Brush Cup Holder");
        else 0."""
        if head in self.heads:
            return 1
        if head in self.name:
            at = len(self.name) - 1 - self.name[::-1].index(head)
            if any(w != head and w in nouns for w in self.name[at + 1 :]):
                return -1
        return 0


def leaf_heads(analyzer: Analyzer, category: str, separator: str) -> set[str]:
    """The head words of a category path's leaf: the last word of each of its "&" / ","
    / "and" parts ("Makeup Brushes & Tools" -> brush, tool)."""
    parts = [p.strip() for p in (category or "").split(separator.strip()) if p.strip()]
    out: set[str] = set()
    for piece in _LEAF_SPLIT.split(parts[-1]) if parts else []:
        terms = analyzer.terms(piece)
        if terms:
            out.add(terms[-1])
    return out


def product_heads(analyzer: Analyzer, title: str, category: str, separator: str) -> ProductHeads:
    """The head words of a product: its title name part's last word without a digit
    (`name_terms`; "Image Plate KD1" -> plate) and its category leaf's (`leaf_heads`)."""
    words = name_terms(analyzer, title or "")
    while words and any(c.isdigit() for c in words[-1]):
        words.pop()  # a model or shade code after the product noun
    heads = leaf_heads(analyzer, category, separator)
    heads.update(words[-1:])
    return ProductHeads(frozenset(heads), tuple(words))


def _possessives(words: list[str]) -> tuple[list[str], list[str]]:
    """(words, the text of each to analyse): a lone "s" after a word is that word's
    possessive written apart ("burt s bees", what a tokeniser splitting on the apostrophe
    leaves of "burt's"), so it joins the word and is analysed as "burt's" (whose "'s"
    the analyzer drops)."""
    words_out: list[str] = []
    texts: list[str] = []
    for word in words:
        if words_out and word.casefold() == "s":
            words_out[-1] = f"{words_out[-1]} {word}"
            texts[-1] = f"{texts[-1]}'s"
        else:
            words_out.append(word)
            texts.append(word)
    return words_out, texts


def head_position(words: list[str]) -> int:
    """The index of the head word of a query's words (-1 for none): the last word, or the
    last before the first `HEAD_TAIL_WORDS` word that is not the first word."""
    for i, word in enumerate(words[1:], start=1):
        if word.casefold() in HEAD_TAIL_WORDS:
            return i - 1
    return len(words) - 1


@dataclass(frozen=True)
class UnderstandingOptions:
    """Knobs of query understanding (see the `understand_*` fields of `SearchConfig`)."""

    price: bool = True
    cheap: str = "filter"
    brand: bool = True
    category: bool = True
    max_phrase_words: int = 4


@dataclass
class Understood:
    """What `QueryUnderstanding.read` found in one query."""

    query: str
    text: str
    """The text left to search (price phrases and cheap words removed)."""
    min_price: float | None = None
    max_price: float | None = None
    price_source: str | None = None
    cheap: str | None = None
    """The cheap word, when one was found."""
    brand: str | None = None
    brand_words: str | None = None
    category: list[str] = field(default_factory=list)
    """The category paths a mention names (one segment can sit under several parents)."""
    category_words: str | None = None
    category_head: bool = False
    """The category mention holds the query's head word (`head_position`)."""
    only_mention: bool = False
    """The query is nothing but the brand / category mention (filter instead of boost)."""
    removed: list[str] = field(default_factory=list)
    head: str | None = None
    """The analysed head word of the query (`head_position`), None when it is part of the
    brand mention or the query has no word."""

    @property
    def has_price(self) -> bool:
        """Whether a price bound was read."""
        return self.min_price is not None or self.max_price is not None

    def price_info(self) -> dict[str, Any]:
        """`query_info["price"]` before the service says how it was applied."""
        out: dict[str, Any] = {}
        if self.min_price is not None:
            out["min"] = self.min_price
        if self.max_price is not None:
            out["max"] = self.max_price
        if self.price_source:
            out["source"] = self.price_source
        return out


def _amount(whole: str, cents: str | None) -> float:
    value = float(whole.replace(",", ""))
    return value + (float(f"0.{cents}") if cents else 0.0)


class QueryUnderstanding:
    """Reads price intent, cheap words and brand / category mentions against the
    catalogue's brand and category labels."""

    def __init__(self, analyzer: Analyzer, options: UnderstandingOptions | None = None) -> None:
        self.analyzer = analyzer
        self.options = options or UnderstandingOptions()
        self._brands: dict[str, str] = {}
        self._categories: dict[str, list[str]] = {}
        self._n_brands = 0
        self._n_categories = 0

    def _key(self, phrase: str) -> str:
        return " ".join(self.analyzer.terms(phrase))

    def update(self, brands: list[str], categories: list[str], separator: str) -> None:
        """Learn labels appended since the last call (label lists only ever grow)."""
        for label in brands[self._n_brands :]:
            key = self._key(label)
            if key and not key.replace(" ", "").isdigit():
                self._brands.setdefault(key, label)
        self._n_brands = len(brands)
        for path in categories[self._n_categories :]:
            parts = [p.strip() for p in path.split(separator.strip()) if p.strip()]
            for depth, part in enumerate(parts):
                key = self._key(part)
                if not key:
                    continue
                prefix = separator.join(parts[: depth + 1])
                paths = self._categories.setdefault(key, [])
                if prefix not in paths:
                    paths.append(prefix)
        self._n_categories = len(categories)

    def read(self, query: str) -> Understood:
        """What `query` asks for beyond its words."""
        out = Understood(query=query, text=query)
        if has_cjk(query):
            return out
        text = query
        o = self.options
        if o.price:
            text = self._price(text, out)
        if o.cheap != "off":
            kept = []
            for word in text.split():
                if word.casefold().strip(".,!?") in CHEAP_WORDS and out.cheap is None:
                    out.cheap = word
                    out.removed.append(word)
                else:
                    kept.append(word)
            text = " ".join(kept)
        out.text = " ".join(text.split())
        self._mentions(out)
        return out

    def _price(self, text: str, out: Understood) -> str:
        lowered = text.casefold()
        spans: list[tuple[int, int]] = []
        for kind, pattern in _PATTERNS:
            for m in pattern.finditer(lowered):
                if any(m.start() < e and s < m.end() for s, e in spans):
                    continue
                rest = lowered[m.end() :]
                if rest[:1].isalnum() or _UNIT_AFTER.match(rest):
                    continue  # "under 500ml", "over 65 inch": units, not prices
                g = m.groups()
                if kind == "range":
                    lo, hi = _amount(g[0], g[1]), _amount(g[2], g[3])
                    lo, hi = min(lo, hi), max(lo, hi)
                    out.min_price = lo if out.min_price is None else max(out.min_price, lo)
                    out.max_price = hi if out.max_price is None else min(out.max_price, hi)
                elif kind == "max":
                    v = _amount(g[0], g[1])
                    out.max_price = v if out.max_price is None else min(out.max_price, v)
                else:
                    v = _amount(g[0], g[1])
                    out.min_price = v if out.min_price is None else max(out.min_price, v)
                spans.append((m.start(), m.end()))
        if not spans:
            return text
        spans.sort()
        phrases = [text[s:e].strip() for s, e in spans]
        out.price_source = "; ".join(phrases)
        out.removed.extend(phrases)
        if (
            out.min_price is not None
            and out.max_price is not None
            and out.min_price > out.max_price
        ):
            out.min_price, out.max_price = out.max_price, out.min_price
        kept, last = [], 0
        for s, e in spans:
            kept.append(text[last:s])
            last = e
        kept.append(text[last:])
        return " ".join("".join(kept).split())

    def _mentions(self, out: Understood) -> None:
        o = self.options
        words, texts = _possessives(_WORD.findall(out.text))
        keys = [self._key(w) for w in texts]
        n = len(words)
        head = head_position(words)
        taken: list[tuple[int, int]] = []  # the brand mention's span
        found: list[tuple[int, int, str]] = []  # category mentions: start, size, key
        for size in range(min(o.max_phrase_words, n), 0, -1):
            for start in range(n - size + 1):
                key = " ".join(k for k in keys[start : start + size] if k)
                if not key:
                    continue
                phrase = " ".join(words[start : start + size])
                if o.brand and out.brand is None and key in self._brands:
                    out.brand = self._brands[key]
                    out.brand_words = phrase
                    out.only_mention = size == n
                    taken.append((start, size))
                elif o.category and key in self._categories:
                    found.append((start, size, key))
        # the longest mention outside the brand's words, the one holding the head first
        found = [f for f in found if not any(a < f[0] + f[1] and f[0] < a + b for a, b in taken)]
        if found:
            holds = [f for f in found if f[0] <= head < f[0] + f[1]]
            start, size, key = (holds or found)[0]
            out.category = list(self._categories[key])
            out.category_words = " ".join(words[start : start + size])
            out.category_head = bool(holds)
            out.only_mention = out.only_mention or size == n
        if out.brand and out.category:
            out.only_mention = False  # two mentions: boost both, filter neither
        if 0 <= head < n and keys[head] and not any(a <= head < a + b for a, b in taken):
            out.head = keys[head].split()[-1]
