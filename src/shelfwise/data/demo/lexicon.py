"""The demo generator's word tables, read once from the TOML files under `vocab/`.

Three files ship with the package (each documents its schema in a comment at its top):

* `catalogue.toml`: the top-level categories in order, each with its traffic share, its
  brands and its leaf categories (prices and the words titles and descriptions are made of);
* `descriptions.toml`: how variants read in a sentence, words that keep their capitals and
  the closing sentences of descriptions;
* `shoppers.toml`: the weighted values of the shoppers' attributes.

Every file is validated on load against a pydantic schema (unknown fields, missing or empty
lists, non-positive prices, duplicate brands or paths, phrases without their placeholder,
...); a bad file raises `ConfigError` naming the file, the row and the field. The order of
the tables is part of the output: the generator draws its random numbers in that order.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from shelfwise.errors import ConfigError

__all__ = [
    "BRANDS",
    "LEAVES",
    "LEXICON",
    "TOP_CATEGORIES",
    "VOCAB_FILES",
    "Leaf",
    "Lexicon",
    "build_lexicon",
    "load_lexicon",
]

VOCAB_FILES = ("catalogue.toml", "descriptions.toml", "shoppers.toml")
"""The vocabulary files under `shelfwise/data/demo/vocab/`."""


@dataclass(frozen=True)
class Leaf:
    """A leaf category with the vocabulary its products are made of.

    A title is `"Brand Adjective Variant Noun, Size"`; the variant is a material, colour,
    scent, flavour, ... as `variant_key` says, and becomes an attribute of that name.
    """

    path: str
    median_price: float
    price_sigma: float
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    variants: tuple[str, ...]
    sizes: tuple[str, ...]
    uses: tuple[str, ...]
    features: tuple[str, ...]
    variant_key: str = "material"
    size_key: str = "size"
    consumable: bool = False
    cycle_days: float = 30.0
    size_step: float = 0.12

    @property
    def top(self) -> str:
        """The top-level category."""
        return self.path.split(" > ")[0]

    @property
    def name(self) -> str:
        """The leaf's own name (the last level)."""
        return self.path.split(" > ")[-1]


@dataclass(frozen=True)
class Lexicon:
    """All word tables of the demo generator, validated.

    `brands` and `top_share` are keyed by top-level category in `top_categories` order;
    `shopper_attributes` maps an attribute (country, signup_channel, device, age_band) to
    its values and their relative weights, in file order.
    """

    leaves: tuple[Leaf, ...]
    top_categories: tuple[str, ...]
    brands: dict[str, tuple[str, ...]]
    top_share: dict[str, float]
    variant_phrases: dict[str, str]
    proper_words: frozenset[str]
    lower_variant_keys: frozenset[str]
    closing_sentences: tuple[str, ...]
    shopper_attributes: dict[str, dict[str, float]]


# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


def _word(value: str) -> str:
    # titles and queries join words with single spaces, so stray spaces would leak into them
    if not value or value != value.strip():
        raise ValueError("must be a non-empty string without leading or trailing spaces")
    return value


def _identifier(value: str) -> str:
    # keys become attribute names in items' JSON and Python format fields
    if not value.isidentifier() or not value.islower():
        raise ValueError(f"{value!r} must be a lower-case identifier such as 'blade_length'")
    return value


# Scalars are strict (TOML is typed: a quoted number or 1 for true is a mistake); containers
# are not, since strict tuples would refuse the lists TOML gives.
Word = Annotated[str, Field(strict=True), AfterValidator(_word)]
Identifier = Annotated[str, Field(strict=True), AfterValidator(_identifier)]
Positive = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Flag = Annotated[bool, Field(strict=True)]
Text = Annotated[str, Field(strict=True)]
Words = Annotated[tuple[Word, ...], Field(min_length=1)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound="_Schema")


class _LeafSpec(_Schema):
    path: Text
    median_price: Positive
    price_sigma: NonNegative
    variant_key: Identifier = "material"
    size_key: Identifier = "size"
    consumable: Flag = False
    cycle_days: Positive = 30.0
    size_step: NonNegative = 0.12
    nouns: Words
    adjectives: Words
    variants: Words
    sizes: tuple[Word, ...]
    uses: Words
    features: Words

    @model_validator(mode="after")
    def _keys_differ(self) -> _LeafSpec:
        reserved = {"rating_avg", "rating_count"}
        if self.variant_key == self.size_key:
            raise ValueError(f"variant_key and size_key are both {self.variant_key!r}; rename one")
        if {self.variant_key, self.size_key} & reserved:
            raise ValueError(f"variant_key and size_key must not be one of {sorted(reserved)}")
        return self


class _CategorySpec(_Schema):
    name: Word
    traffic_share: Positive
    brands: Words
    leaf: Annotated[tuple[_LeafSpec, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _paths_under_name(self) -> _CategorySpec:
        for i, lf in enumerate(self.leaf):
            levels = lf.path.split(" > ")
            if len(levels) != 3 or any(not v or v != v.strip() for v in levels):
                raise ValueError(
                    f"leaf[{i}].path {lf.path!r} must have three levels 'Top > Group > Leaf'"
                )
            if levels[0] != self.name:
                raise ValueError(
                    f"leaf[{i}].path {lf.path!r} must start with its category {self.name!r}"
                )
        return self


class _CatalogueFile(_Schema):
    category: Annotated[tuple[_CategorySpec, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> _CatalogueFile:
        for what, values in (
            ("category name", [c.name for c in self.category]),
            ("leaf path", [lf.path for c in self.category for lf in c.leaf]),
            # brands are matched by name (latent tastes, tests), so one name is one brand
            ("brand", [b for c in self.category for b in c.brands]),
        ):
            seen: set[str] = set()
            for value in values:
                if value in seen:
                    raise ValueError(f"{what} {value!r} appears twice; each must be unique")
                seen.add(value)
        return self


class _WordsSpec(_Schema):
    proper: tuple[Word, ...]
    lower_variant_keys: tuple[Identifier, ...]


class _ClosingSpec(_Schema):
    sentences: Words

    @model_validator(mode="after")
    def _placeholders(self) -> _ClosingSpec:
        for i, sentence in enumerate(self.sentences):
            extra = _placeholders(sentence) - {"brand", "rating"}
            if extra:
                raise ValueError(
                    f"sentences[{i}] {sentence!r} uses {sorted(extra)}; "
                    "only {brand} and {rating} are filled in"
                )
        return self


class _DescriptionsFile(_Schema):
    variant_phrases: Annotated[dict[Identifier, Text], Field(min_length=1)]
    words: _WordsSpec
    closing: _ClosingSpec

    @model_validator(mode="after")
    def _phrases(self) -> _DescriptionsFile:
        for key, phrase in self.variant_phrases.items():
            if phrase.count("{v}") != 1 or _placeholders(phrase) != {"v"}:
                raise ValueError(
                    f"variant_phrases.{key} {phrase!r} must hold the placeholder {{v}} exactly "
                    "once and no other"
                )
        return self


Weights = Annotated[dict[Word, Positive], Field(min_length=1)]


class _ShoppersFile(_Schema):
    country: Weights
    signup_channel: Weights
    device: Weights
    age_band: Weights


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _where(loc: tuple[int | str, ...], raw: Any) -> str:
    """A readable location (`category[1] "Electronics" > leaf[0] ... > nouns`)."""
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int):
            label = f"[{step}]"
            node = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(node, dict):
                name = node.get("path", node.get("name"))
                if isinstance(name, str):
                    label += f" {name!r}"
            if parts:
                parts[-1] += label
            else:
                parts.append(label)
            continue
        parts.append(str(step))
        node = node.get(step) if isinstance(node, dict) else None
    return " > ".join(parts) or "(top level)"


def _parse(model: type[M], text: str, source: str) -> tuple[M, dict[str, Any]]:
    """The file `source` parsed as TOML and validated against `model`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"demo vocabulary {source}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate(raw), raw
    except ValidationError as exc:
        problems = "; ".join(
            f"{_where(err['loc'], raw)}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigError(
            f"demo vocabulary {source}: {problems} "
            "(the schema is described in the comment at the top of the file)"
        ) from exc


def build_lexicon(texts: Mapping[str, str]) -> Lexicon:
    """A validated `Lexicon` from the text of each file in `VOCAB_FILES`, keyed by file name.

    Raises `ConfigError` naming the file, the row and the field when a file is missing,
    is not TOML or does not follow its schema, or when the files disagree (a leaf's
    `variant_key` without a phrase in `descriptions.toml`).
    """
    missing = [name for name in VOCAB_FILES if name not in texts]
    if missing:
        raise ConfigError(f"demo vocabulary: missing {missing}; expected {list(VOCAB_FILES)}")
    catalogue, _ = _parse(_CatalogueFile, texts["catalogue.toml"], "catalogue.toml")
    descriptions, _ = _parse(_DescriptionsFile, texts["descriptions.toml"], "descriptions.toml")
    shoppers, _ = _parse(_ShoppersFile, texts["shoppers.toml"], "shoppers.toml")

    for category in catalogue.category:
        for lf in category.leaf:
            if lf.variant_key not in descriptions.variant_phrases:
                raise ConfigError(
                    f"demo vocabulary catalogue.toml: leaf {lf.path!r} has variant_key "
                    f"{lf.variant_key!r}, which has no phrase; add one to [variant_phrases] "
                    "in descriptions.toml"
                )
    leaves = tuple(
        Leaf(
            path=lf.path,
            median_price=float(lf.median_price),
            price_sigma=float(lf.price_sigma),
            nouns=lf.nouns,
            adjectives=lf.adjectives,
            variants=lf.variants,
            sizes=lf.sizes,
            uses=lf.uses,
            features=lf.features,
            variant_key=lf.variant_key,
            size_key=lf.size_key,
            consumable=lf.consumable,
            cycle_days=float(lf.cycle_days),
            size_step=float(lf.size_step),
        )
        for category in catalogue.category
        for lf in category.leaf
    )
    return Lexicon(
        leaves=leaves,
        top_categories=tuple(c.name for c in catalogue.category),
        brands={c.name: c.brands for c in catalogue.category},
        top_share={c.name: float(c.traffic_share) for c in catalogue.category},
        variant_phrases=dict(descriptions.variant_phrases),
        proper_words=frozenset(descriptions.words.proper),
        lower_variant_keys=frozenset(descriptions.words.lower_variant_keys),
        closing_sentences=descriptions.closing.sentences,
        shopper_attributes={
            name: {k: float(v) for k, v in getattr(shoppers, name).items()}
            for name in ("country", "signup_channel", "device", "age_band")
        },
    )


@cache
def load_lexicon() -> Lexicon:
    """The packaged vocabulary (`shelfwise/data/demo/vocab/*.toml`), read and validated once."""
    folder = resources.files(__package__ or "shelfwise.data.demo") / "vocab"
    texts: dict[str, str] = {}
    for name in VOCAB_FILES:
        try:
            texts[name] = (folder / name).read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(
                f"demo vocabulary file {name} is missing from {folder}; reinstall shelfwise "
                "(the files are package data: data/demo/vocab/*.toml)"
            ) from exc
    return build_lexicon(texts)


LEXICON: Lexicon = load_lexicon()
"""The packaged vocabulary."""

LEAVES: tuple[Leaf, ...] = LEXICON.leaves
"""The leaf categories, in catalogue order."""

BRANDS: dict[str, tuple[str, ...]] = LEXICON.brands
"""Invented, plausible brand names per top-level category."""

TOP_CATEGORIES: tuple[str, ...] = LEXICON.top_categories
"""The top-level categories, in a fixed order (the columns of `top_preference`)."""
