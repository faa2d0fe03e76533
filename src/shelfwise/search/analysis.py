"""Text analysis: Unicode normalisation, tokenising, numbers and units, stop words, stemming.

One `Analyzer` serves indexing and querying, so both sides see the same terms:

1. **Normalise**: Unicode NFKC (full-width "ＡＢＣ１２" -> "abc12", ligatures, ...), lower-case,
   accents stripped ("Crème" -> "creme").
2. **Tokenise**: runs of CJK ideographs are segmented into words with jieba ("无线蓝牙耳机" ->
   "无线", "蓝牙", "耳机"); other text splits into letter words, letter-led model names
   ("ps5", "b12") and numbers with an optional glued unit ("500ml", "2.5kg").
3. **Numbers and units**: a glued unit is canonicalised ("65inches" -> "65inch",
   "500 ML" -> "500ml"). A number followed by a unit word adds the glued form, so
   "65 inch" -> "65", "65inch", "inch": the query "65 inch" finds "65inch" and vice versa.
   Decimal commas become points ("1,5l" -> "1.5l"); a thousands comma is dropped ("1,000").
4. **Stop words** by language (English, German, French, Spanish and Chinese lists below),
   removed after unit handling so that "65 in" still reads as 65 inches.
5. **Stemming**: Snowball (PyStemmer) for the analyzer's language; numbers, model names and
   Chinese words are not stemmed.

`tokens(text)` gives the surface tokens (step 4), `terms(text)` the stemmed index terms.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache
from typing import Any

import Stemmer

from shelfwise.errors import ConfigError


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


__all__ = [
    "CHINESE_STOP_WORDS",
    "ENGLISH_STOP_WORDS",
    "STOP_WORDS",
    "UNITS",
    "Analyzer",
    "has_cjk",
]

ENGLISH_STOP_WORDS = _words(
    "a an and are as at be but by for from if in into is it its of on or so such that the "
    "their then there these they this to was will with without"
)
GERMAN_STOP_WORDS = _words(
    "aber als am an auch auf aus bei bin bis das dass dem den der des die du ein eine einem "
    "einen einer eines es fur im in ist mit nach nicht oder sich sie sind so und vom von "
    "vor war wie zu zum zur"
)
FRENCH_STOP_WORDS = _words(
    "au aux avec ce ces dans de des du elle en est et il ils la le les leur lui ma mais me "
    "mes ne nos notre nous ou par pas pour qu que qui sa se ses son sur ta te un une vos "
    "votre vous"
)
SPANISH_STOP_WORDS = _words(
    "a al como con de del el en es esta este la las lo los mas mi no o para pero por que "
    "se sin su sus un una uno unos y"
)
CHINESE_STOP_WORDS = _words(
    "的 了 和 是 在 与 及 或 等 也 都 就 而 之 着 把 被 对 从 到 为 以 上 中 个"
)
STOP_WORDS: dict[str, frozenset[str]] = {
    "english": ENGLISH_STOP_WORDS,
    "german": GERMAN_STOP_WORDS,
    "french": FRENCH_STOP_WORDS,
    "spanish": SPANISH_STOP_WORDS,
    "chinese": CHINESE_STOP_WORDS,
}
"""Stop words per language; Chinese ones always apply (they only match Chinese words)."""

_UNIT_ALIASES: dict[str, tuple[str, ...]] = {
    "inch": ("in", "inch", "inches", "zoll"),
    "ft": ("ft", "foot", "feet"),
    "mm": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "cm": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("m", "meter", "meters", "metre", "metres"),
    "ml": ("ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    "cl": ("cl",),
    "l": ("l", "liter", "liters", "litre", "litres", "ltr"),
    "floz": ("floz",),
    "oz": ("oz", "ounce", "ounces"),
    "g": ("g", "gr", "gram", "grams", "gramme", "grammes"),
    "mg": ("mg",),
    "kg": ("kg", "kilo", "kilos", "kilogram", "kilograms"),
    "lb": ("lb", "lbs", "pound", "pounds"),
    "w": ("w", "watt", "watts"),
    "kw": ("kw",),
    "v": ("v", "volt", "volts"),
    "mah": ("mah",),
    "hz": ("hz",),
    "ghz": ("ghz",),
    "gb": ("gb", "gig", "gigs", "gigabyte", "gigabytes"),
    "tb": ("tb", "terabyte", "terabytes"),
    "mb": ("mb",),
    "pack": ("pack", "packs", "pk"),
    "pc": ("pc", "pcs", "piece", "pieces"),
    "ct": ("ct", "count"),
    "mp": ("mp", "megapixel", "megapixels"),
    "k": ("k",),
}
UNITS: dict[str, str] = {
    alias: canon for canon, aliases in _UNIT_ALIASES.items() for alias in aliases
}
"""Unit spelling -> canonical unit (`"inches" -> "inch"`, `"litre" -> "l"`)."""

_CJK_RANGES = (
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
)
_CJK = re.compile(f"[{_CJK_RANGES}]")
_TOKEN = re.compile(
    rf"(?P<cjk>[{_CJK_RANGES}]+)"
    r"|(?P<num>\d+(?:[.,]\d+)*)(?P<unit>[^\W\d_]+)?"
    rf"|(?P<model>[^\W\d_{_CJK_RANGES}]+\d[^\W_{_CJK_RANGES}]*)"
    rf"|(?P<word>[^\W\d_{_CJK_RANGES}]+(?:'[^\W\d_{_CJK_RANGES}]+)*)",
    re.UNICODE,
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
"""Typographic apostrophes, read as the ASCII one ("Burt\u2019s" is "Burt's")."""
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_CACHE_LIMIT = 200_000
_log = logging.getLogger(__name__)


def has_cjk(text: str) -> bool:
    """Whether `text` holds a CJK ideograph (and so needs word segmentation)."""
    return _CJK.search(text) is not None


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(language)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _number(text: str) -> str:
    if _THOUSANDS.match(text):
        return text.replace(",", "")
    return text.replace(",", ".")


class Analyzer:
    """Turns text into index terms; the same analyzer must serve indexing and querying.

    `language` picks the Snowball stemmer and the stop-word list (`STOP_WORDS`); pass
    `stop_words` to use your own set instead (Chinese stop words always apply).
    """

    def __init__(
        self,
        stem: bool = True,
        stop_words: frozenset[str] | None = None,
        language: str = "english",
    ) -> None:
        if language not in Stemmer.algorithms():
            raise ConfigError(
                f"language '{language}' has no stemmer; choose one of "
                f"{', '.join(sorted(Stemmer.algorithms()))}"
            )
        self.stem = stem
        self.language = language
        self.custom_stop_words = stop_words is not None
        base = stop_words if stop_words is not None else STOP_WORDS.get(language, frozenset())
        self.stop_words = frozenset(base) | CHINESE_STOP_WORDS
        self._stems: dict[str, str] = {}

    # -- configuration -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings; `Analyzer.from_dict` rebuilds an identical analyzer."""
        out: dict[str, Any] = {"stem": self.stem, "language": self.language}
        if self.custom_stop_words:
            out["stop_words"] = sorted(self.stop_words - CHINESE_STOP_WORDS)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analyzer:
        """The analyzer `to_dict` described."""
        stop = data.get("stop_words")
        return cls(
            stem=bool(data.get("stem", True)),
            stop_words=None if stop is None else frozenset(stop),
            language=str(data.get("language", "english")),
        )

    # -- analysis ------------------------------------------------------------------------

    def normalise(self, text: str) -> str:
        """NFKC-normalise, lower-case and strip accents."""
        text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
        if text.isascii():
            return text
        decomposed = unicodedata.normalize("NFD", text)
        stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
        return unicodedata.normalize("NFC", stripped)

    def tokens(self, text: str) -> list[str]:
        """Surface tokens: normalised, segmented, units handled, stop words removed."""
        out: list[str] = []
        stop = self.stop_words
        pending_number: str | None = None
        for m in _TOKEN.finditer(self.normalise(text)):
            kind = m.lastgroup
            if kind == "cjk":
                pending_number = None
                out.extend(
                    w
                    for w in _jieba().lcut(m.group("cjk"))
                    if w.strip() and w not in stop and not w.isspace()
                )
                continue
            if kind in ("num", "unit"):
                number = _number(m.group("num"))
                unit = m.group("unit")
                if unit is None:
                    out.append(number)
                    pending_number = number
                else:
                    out.append(number + UNITS.get(unit, unit))
                    pending_number = None
                continue
            word = m.group(kind or "word")
            if "'" in word:
                parts = self._apostrophe(word)
                pending_number = None
                out.extend(w for w in parts if w not in stop)
                continue
            if pending_number is not None and word in UNITS:
                out.append(pending_number + UNITS[word])
            pending_number = None
            if word not in stop:
                out.append(word)
        return out

    def _apostrophe(self, word: str) -> list[str]:
        """The tokens of a word with apostrophes in it. English: a possessive "'s" is
        dropped (Lucene's EnglishPossessiveFilter: "burt's" -> "burt", the term "burts"
        also stems to) and the other apostrophes joined ("l'oreal" -> "loreal", "don't"
        -> "dont"); other languages: the parts ("l'eau" -> "l", "eau"), as before."""
        if self.language != "english":
            return [w for w in word.split("'") if w]
        if word.endswith("'s"):
            word = word[:-2]
        return [word.replace("'", "")] if word else []

    def stem_token(self, token: str) -> str:
        """The index term of one surface token."""
        if not self.stem or not token or not token.isalpha() or has_cjk(token):
            return token
        stemmed = self._stems.get(token)
        if stemmed is None:
            stemmed = _stemmer(self.language).stemWord(token)
            if len(self._stems) < _CACHE_LIMIT:
                self._stems[token] = stemmed
        return stemmed

    def terms(self, text: str) -> list[str]:
        """Index terms: the stemmed tokens."""
        toks = self.tokens(text)
        if not self.stem:
            return toks
        return [self.stem_token(t) for t in toks]

    def pairs(self, text: str) -> list[tuple[str, str]]:
        """(surface token, index term) for every token, in order."""
        return [(t, self.stem_token(t)) for t in self.tokens(text)]
