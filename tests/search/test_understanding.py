"""Query understanding with known answers on a small catalogue: price intent as a filter
(relaxed and said so when it leaves nothing), cheap words, brand and category mentions
from the catalogue's own labels, units kept, the off switch, Chinese unchanged."""

import pandas as pd
import pytest

from shelfwise.search.analysis import Analyzer
from shelfwise.search.service import SearchConfig, SearchService
from shelfwise.search.understanding import QueryUnderstanding

ROWS = [
    ("T1", "Lumio 55 inch 4K TV", "Lumio", "Electronics > TV & Video > TVs", 449.0),
    ("T2", "Lumio 65 inch OLED TV", "Lumio", "Electronics > TV & Video > TVs", 1731.0),
    ("T3", "Vexa 43 inch Smart TV", "Vexa", "Electronics > TV & Video > TVs", 299.0),
    ("T4", "Vexa 75 inch QLED TV", "Vexa", "Electronics > TV & Video > TVs", 999.0),
    ("H1", "Sonaro Wireless Headphones", "Sonaro", "Electronics > Audio > Headphones", 165.0),
    ("H2", "Pixelon Wired Headphones", "Pixelon", "Electronics > Audio > Headphones", 29.0),
    ("H3", "Sonaro Sport Headphones", "Sonaro", "Electronics > Audio > Headphones", 45.0),
    ("H4", "Pixelon Studio Headphones", "Pixelon", "Electronics > Audio > Headphones", 89.0),
    ("H5", "Ostara Kids Headphones", "Ostara", "Electronics > Audio > Headphones", 22.0),
    ("S1", "Aqua Shampoo 500ml", "Aqua", "Beauty > Hair Care > Shampoo", 12.0),
    ("S2", "Aqua Shampoo 250ml", "Aqua", "Beauty > Hair Care > Shampoo", 8.0),
    ("C1", "无线蓝牙耳机", "Sonaro", "Electronics > Audio > Headphones", 35.0),
]


def build(**cfg):
    frame = pd.DataFrame(ROWS, columns=["item_id", "title", "brand", "category", "price"])
    return SearchService.build(frame, None, SearchConfig(**cfg))


@pytest.fixture(scope="module")
def service():
    return build()


def ids(res):
    return [i["item_id"] for i in res.items]


def prices(res):
    return [i["price"] for i in res.items]


def test_tv_under_500_filters_by_price_and_says_so(service):
    res = service.search("tv under 500")
    assert sorted(ids(res)) == ["T1", "T3"]
    assert all(p <= 500 for p in prices(res))
    qi = res.query_info
    assert qi["price"] == {"max": 500.0, "source": "under 500", "applied": "filter"}
    assert qi["searched"] == "tv" and qi["removed"] == ["under 500"]
    assert qi["query"] == "tv under 500"


def test_headphones_below_dollars(service):
    res = service.search("headphones below $50")
    assert sorted(ids(res)) == ["C1", "H2", "H3", "H5"]
    assert res.query_info["price"]["max"] == 50.0
    assert res.query_info["price"]["source"] == "below $50"


def test_between_20_and_40(service):
    res = service.search("headphones between 20 and 40")
    assert sorted(ids(res)) == ["C1", "H2", "H5"]
    assert (res.query_info["price"]["min"], res.query_info["price"]["max"]) == (20.0, 40.0)


def test_a_price_bound_that_leaves_nothing_is_relaxed_and_said(service):
    res = service.search("tv under 100")
    assert sorted(ids(res)) == ["T1", "T2", "T3", "T4"]
    assert res.query_info["price"]["applied"] == "relaxed"
    assert "under 100" in res.query_info["notice"]


def test_the_request_price_filter_wins(service):
    res = service.search("tv under 500", filters=["price=900.."])
    assert sorted(ids(res)) == ["T2", "T4"]
    assert res.query_info["price"]["applied"] == "none"


def test_cheap_keeps_the_cheaper_half(service):
    res = service.search("cheap headphones")
    # headphones cost 165, 29, 45, 89, 22, 35: the median is 40
    assert sorted(ids(res)) == ["C1", "H2", "H5"]
    assert res.query_info["price"]["preference"] == "cheap"
    assert res.query_info["price"]["max"] == 40.0
    assert res.query_info["searched"] == "headphones"


def test_cheap_as_a_boost_orders_cheaper_first():
    svc = build(understand_cheap="boost", brand_filter_alone=False)
    res = svc.search("cheap sonaro headphones")
    assert ids(res)[:2] == ["H3", "H1"]  # same words, 45 before 165
    assert res.query_info["price"]["applied"] == "boost"
    plain = svc.search("sonaro headphones", understand=False)
    assert ids(plain)[0] == "H1"  # shorter title without the preference


def test_brand_mention_boosts_and_a_brand_alone_filters(service):
    res = service.search("pixelon headphones")
    assert res.query_info["brand"]["value"] == "Pixelon"
    assert res.query_info["brand"]["applied"] == "boost"
    assert ids(res)[:2] in (["H2", "H4"], ["H4", "H2"])
    alone = service.search("pixelon")
    assert sorted(ids(alone)) == ["H2", "H4"]
    assert alone.query_info["brand"]["applied"] == "filter"


def test_brand_boost_lifts_the_named_brand():
    frame = pd.DataFrame(
        [
            ("A", "Wireless Headphones Vexa Edition", "Sonaro", "Audio", 10.0),
            ("B", "Wireless Headphones", "Vexa", "Audio", 10.0),
        ],
        columns=["item_id", "title", "brand", "category", "price"],
    )
    boosted = SearchService.build(frame, None, SearchConfig(brand_boost=2.0))
    res = boosted.search("vexa headphones")
    assert ids(res)[0] == "B" and res.query_info["brand"]["value"] == "Vexa"
    assert res.items[0]["score"] > res.items[1]["score"]


def test_category_mention_boosts_or_filters_when_alone(service):
    res = service.search("headphones")
    assert res.query_info["category"]["value"] == "Electronics > Audio > Headphones"
    assert res.query_info["category"]["applied"] == "boost"
    assert res.query_info["category"]["boosted"] == 6  # H1-H5 and C1
    frame = pd.DataFrame(
        [
            ("A", "Shampoo Bottle Holder", "Home > Bathroom", 5.0),
            ("B", "Herbal Shampoo", "Beauty > Hair Care > Shampoo", 9.0),
        ],
        columns=["item_id", "title", "category", "price"],
    )
    svc = SearchService.build(frame, None, SearchConfig())
    boost = {i["item_id"]: i["score"] for i in svc.search("shampoo").items}
    plain = {i["item_id"]: i["score"] for i in svc.search("shampoo", understand=False).items}
    assert boost["B"] == pytest.approx(plain["B"] * 1.3, rel=1e-4)  # category_boost 0.3
    assert boost["A"] == pytest.approx(plain["A"])  # the holder is still found, not boosted
    strict = SearchService.build(frame, None, SearchConfig(category_filter_alone=True))
    only = strict.search("shampoo")
    assert ids(only) == ["B"] and only.query_info["category"]["applied"] == "filter"


def test_units_stay_query_terms(service):
    res = service.search("shampoo 500ml")
    assert ids(res) == ["S1"]
    assert "price" not in res.query_info
    tv = service.search("65 inch tv")
    assert ids(tv) == ["T2"] and "price" not in tv.query_info
    assert service.search("over 65 inch tv").query_info.get("price") is None


def test_the_off_switch(service):
    res = service.search("tv under 500", understand=False)
    assert res.query_info["understand"] is False
    assert "price" not in res.query_info  # unknown words "under", "500" are ignored
    assert sorted(ids(res)) == ["T1", "T2", "T3", "T4"]
    off = build(understand=False).search("pixelon")
    assert "brand" not in off.query_info


def test_chinese_queries_are_not_read():
    reader = QueryUnderstanding(Analyzer())
    reader.update(["Sonaro"], ["Electronics > Audio > Headphones"], " > ")
    got = reader.read("无线蓝牙耳机 under 50")
    assert got.text == "无线蓝牙耳机 under 50" and not got.has_price


def test_price_phrases():
    reader = QueryUnderstanding(Analyzer())
    cases = {
        "lamp under 1,000": (None, 1000.0, "lamp"),
        "lamp over $20": (20.0, None, "lamp"),
        "lamp $20-$40": (20.0, 40.0, "lamp"),
        "lamp from 40 to 20": (20.0, 40.0, "lamp"),
        "lamp less than 19.99": (None, 19.99, "lamp"),
        "under armour shoes": (None, None, "under armour shoes"),
        "under 500ml": (None, None, "under 500ml"),
    }
    for query, (lo, hi, text) in cases.items():
        got = reader.read(query)
        assert (got.min_price, got.max_price, got.text) == (lo, hi, text), query


def test_head_position_is_the_last_word_before_a_for_tail():
    from shelfwise.search.understanding import head_position

    assert head_position(["tea", "tree", "oil", "shampoo"]) == 3
    assert head_position(["serum", "for", "face"]) == 0
    assert head_position(["moisturizer", "with", "spf", "for", "oily", "skin"]) == 0
    assert head_position(["for", "men"]) == 1  # a leading "for" starts no tail
    assert head_position([]) == -1


def test_the_category_mention_holding_the_head_word_wins_and_alone_boosts():
    frame = pd.DataFrame(
        [
            ("O1", "Tea Tree Oil", "Beauty > Oils"),
            ("O2", "Argan Oil", "Beauty > Oils"),
            ("S1", "Tea Tree Oil Shampoo", "Beauty > Shampoo"),
            ("S2", "Herbal Shampoo", "Beauty > Shampoo"),
            ("P1", "Oil Blotting Paper", "Beauty > Tools"),
        ],
        columns=["item_id", "title", "category"],
    )
    svc = SearchService.build(frame, None, SearchConfig())
    res = svc.search("tea tree oil shampoo")
    category = res.query_info["category"]
    assert category["value"] == "Beauty > Shampoo" and category["words"] == "shampoo"
    assert category["applied"] == "boost" and category["boosted"] == 1  # S1 matches
    # a mention that only qualifies the product ("oil" blotting paper) is reported, not boosted
    paper = svc.search("oil paper").query_info["category"]
    assert paper["value"] == "Beauty > Oils" and paper["applied"] == "none"
    anywhere = SearchService.build(frame, None, SearchConfig(category_head_only=False))
    assert anywhere.search("oil paper").query_info["category"]["applied"] == "boost"


@pytest.mark.parametrize(
    "query",
    [
        "burts bees lip balm",
        "burt's bees lip balm",
        "Burt\u2019s Bees lip balm",
        "burt s bees lip balm",
    ],
)
def test_a_brand_with_a_possessive_is_detected_however_it_is_written(query):
    u = QueryUnderstanding(Analyzer())
    u.update(["Burt's Bees", "Bees Knees"], ["Beauty > Makeup > Lips > Lip Balm"], " > ")
    read = u.read(query)
    assert read.brand == "Burt's Bees"
    assert read.brand_words == " ".join(query.split()[: len(query.split()) - 2])
    assert read.category == ["Beauty > Makeup > Lips > Lip Balm"]
    assert read.category_words == "lip balm" and read.category_head


def test_a_possessive_brand_query_finds_the_brand():
    frame = pd.DataFrame(
        [
            ("B1", "Burt's Bees Beeswax Lip Balm", "Burt's Bees", "Beauty > Lips", 3.0),
            ("B2", "Honey Lip Balm", "Bees Knees", "Beauty > Lips", 2.0),
            ("B3", "Cherry Lip Balm", "Nivea", "Beauty > Lips", 2.0),
        ],
        columns=["item_id", "title", "brand", "category", "price"],
    )
    service = SearchService.build(frame, None, SearchConfig())
    res = service.search("burts bees lip balm")
    assert ids(res)[0] == "B1"
    assert res.query_info["brand"]["value"] == "Burt's Bees"


def test_product_heads_read_the_title_name_part_and_the_category_leaf():
    from shelfwise.search.understanding import leaf_heads, product_heads

    a = Analyzer()
    sep = " > "
    tigi = product_heads(a, "Tigi Masterpiece Shine Hairspray 9.5 oz", "Beauty > Hair Sprays", sep)
    assert tigi.heads == {"hairspray", "spray"}
    assert tigi.name == ("tigi", "masterpiec", "shine", "hairspray")
    # a model code after the product noun is not the head; the text after " - " is left out
    plate = product_heads(a, "Nail Art Stamping Image Plate KD1", "Beauty > Nail Art", sep)
    assert "plate" in plate.heads
    assert product_heads(a, "Konad Image Plate - M51", "", sep).heads == {"plate"}
    # "for" / "with" tails and commas end the name part
    assert product_heads(a, "Eyeliner Brush for Gel Liner, Black", "", sep).heads == {"brush"}
    assert leaf_heads(a, "Beauty > Tools > Makeup Brushes & Tools", sep) == {"brush", "tool"}
    assert leaf_heads(a, "", sep) == set()


def test_product_head_match_tells_the_thing_from_its_qualifier():
    from shelfwise.search.understanding import product_heads

    a = Analyzer()
    nouns = frozenset({"brush", "holder", "glove", "set"})
    sep = " > "
    brush = product_heads(a, "Sigma F80 Flat Kabuki Brush", "Beauty > Brushes", sep)
    holder = product_heads(a, "Sigma Brush Cup Holder", "Beauty > Brush Sets", sep)
    shade = product_heads(a, "Zoya Nail Polish Blu", "Beauty > Nail Polish", sep)
    other = product_heads(a, "Sigma Dry'n Shape", "Beauty > Brush Sets", sep)
    assert brush.match("brush", nouns) == 1
    assert holder.match("brush", nouns) == -1  # "brush" only qualifies the holder
    assert shade.match("polish", nouns) == 1  # a shade name after the noun: still polish
    assert product_heads(a, "Zoya Nail Polish Blu", "", sep).match("polish", nouns) == 0
    assert other.match("brush", nouns) == 0


def test_the_query_head_word_outside_the_brand_mention(service):
    u = service.understanding
    assert u.read("sonaro headphones").head == "headphon"
    assert u.read("sonaro").head is None  # the head word is the brand
    assert u.read("shampoo for men").head == "shampoo"


def test_head_boost_puts_the_thing_asked_for_above_what_it_qualifies():
    frame = pd.DataFrame(
        [
            ("A", "Sigma Brush Cup Holder", "Sigma", "Beauty > Holders"),
            ("B", "Sigma Brush Cleaning Glove", "Sigma", "Beauty > Gloves"),
            ("C", "Sigma Kabuki Brush", "Sigma", "Beauty > Tools"),
            ("D", "Sigma Blending Brush", "Sigma", "Beauty > Tools"),
        ],
        columns=["item_id", "title", "brand", "category"],
    )
    plain = SearchService.build(frame, None, SearchConfig(head_boost=0.0))
    assert "head" not in plain.search("sigma brushes").query_info
    boosted = SearchService.build(frame, None, SearchConfig(head_boost=0.5))
    res = boosted.search("sigma brushes")
    # brushes first; the holder and the glove hold "brush" only as a qualifier
    assert set(ids(res)[:2]) == {"C", "D"} and set(ids(res)[2:]) == {"A", "B"}
    assert res.query_info["head"] == {"word": "brush", "boost": 0.5, "boosted": 2, "lowered": 2}
