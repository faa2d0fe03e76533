import pytest

from shelfwise.errors import ConfigError
from shelfwise.search.analysis import Analyzer, has_cjk


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("65 inch TV", ["65", "65inch", "inch", "tv"]),
        ("Olive Oil 500ml", ["olive", "oil", "500ml"]),
        ("500 ML bottle", ["500", "500ml", "ml", "bottle"]),
        ("65inches OLED", ["65inch", "oled"]),
        ("TV 65 in", ["tv", "65", "65inch"]),
        ("2,5kg and 1,000 pcs", ["2.5kg", "1000", "1000pc", "pcs"]),
        ("ＰＳ５ Ｃｏｎｔｒｏｌｌｅｒ", ["ps5", "controller"]),
        ("Crème Brûlée", ["creme", "brulee"]),
        ("The shoes for the kids", ["shoes", "kids"]),
    ],
)
def test_tokens_known_outputs(text, tokens):
    assert Analyzer().tokens(text) == tokens


def test_terms_are_stemmed_but_numbers_and_models_are_not():
    a = Analyzer()
    assert a.terms("Running Shoes 42eu ps5") == ["run", "shoe", "42eu", "ps5"]
    assert Analyzer(stem=False).terms("Running Shoes") == ["running", "shoes"]


def test_chinese_is_segmented_with_jieba_and_stop_words_removed():
    a = Analyzer()
    assert has_cjk("无线耳机") and not has_cjk("headphones")
    assert a.tokens("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert a.tokens("无线蓝牙耳机") == ["无线", "蓝牙", "耳机"]
    # "的" is a Chinese stop word; mixed scripts keep both sides, models stay whole
    assert a.tokens("索尼的降噪耳机 Sony WH1000XM5") == [
        "索尼",
        "降噪",
        "耳机",
        "sony",
        "wh1000xm5",
    ]


def test_stop_words_follow_the_language():
    assert Analyzer(language="german").tokens("Schuhe für die Kinder") == ["schuhe", "kinder"]
    assert Analyzer(language="english").tokens("Schuhe für die Kinder") == [
        "schuhe",
        "fur",
        "die",
        "kinder",
    ]
    assert Analyzer(language="german").terms("Kinder") == ["kind"]


def test_custom_stop_words_and_round_trip():
    a = Analyzer(stop_words=frozenset({"red"}))
    assert a.tokens("the red apple") == ["the", "apple"]
    b = Analyzer.from_dict(a.to_dict())
    assert b.tokens("the red apple") == ["the", "apple"]
    assert Analyzer.from_dict(Analyzer().to_dict()).stop_words == Analyzer().stop_words


def test_unknown_language_is_a_config_error():
    with pytest.raises(ConfigError, match="klingon"):
        Analyzer(language="klingon")


def test_pairs_keep_surface_and_term():
    assert Analyzer().pairs("Knives 500ml") == [("knives", "knive"), ("500ml", "500ml")]


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Burt's Bees", ["burt", "bee"]),
        ("burts bees", ["burt", "bee"]),
        ("Burt\u2019s Bees", ["burt", "bee"]),  # a typographic apostrophe
        ("Dr. Bronner's soap", ["dr", "bronner", "soap"]),
        ("L'Oreal Paris", ["loreal", "pari"]),
        ("girls' hair clips", ["girl", "hair", "clip"]),
    ],
)
def test_english_possessives_are_dropped_and_apostrophes_joined(text, terms):
    # Lucene's EnglishPossessiveFilter: "burt's" and "burts" are one term, not "burt s"
    assert Analyzer().terms(text) == terms


def test_apostrophes_split_words_outside_english():
    assert Analyzer(language="french").tokens("l'eau de parfum") == ["l", "eau", "parfum"]
