"""Matching and corrections with known answers: minimum-should-match, coordination, phrase
and proximity boosts, the prefix rule, split and joined forms, honest corrections and
what `query_info` reports."""

import pandas as pd
import pytest

from shelfwise.search.service import SearchConfig, SearchService

TITLES = {
    "M1": "Sulfate Free Shampoo for Curly Hair",
    "M2": "Moisturizing Shampoo for Dry Hair",
    "M3": "Curly Hair Cream",
    "M4": "Shampoo12 Travel Kit",
    "M5": "Waterproof Eyeliner Pencil Black",
    "M6": "Liquid Eye Liner Black",
    "M7": "Matte Lipstick Red",
    "M8": "Lip Stick Gloss Pink",
    "M9": "Leg Warmers Wool",
    "M10": "Menopause Support Supplement",
    "M11": "Men Face Wash",
    "M12": "Shampo Bar Natural",
    "P1": "Argan Oil Serum Bottle",
    "P2": "Oil Serum with Argan Bottle",
}


def build(**cfg):
    frame = pd.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values())})
    return SearchService.build(frame, None, SearchConfig(**cfg))


@pytest.fixture(scope="module")
def service():
    return build(rare_word_ratio=2.0)


def ids(res):
    return [i["item_id"] for i in res.items]


def test_short_queries_need_every_word(service):
    res = service.search("curly shampoo")
    assert ids(res) == ["M1"] and res.query_info["required"] == 2


def test_longer_queries_need_most_words_and_rank_by_coordination(service):
    # 5 words: a product needs floor(0.75 * 5) = 3 of them
    res = service.search("sulfate free shampoo dry hair")
    assert res.query_info["required"] == 3
    assert ids(res) == ["M1", "M2"]  # M1 has 4 of 5 words, M2 3, M3 only "hair"
    strict = build(matching="all")
    assert strict.search("sulfate free shampoo dry hair").total == 0


def test_required_matches_rule():
    svc = build(min_match_all_up_to=3, min_match_ratio=0.5)
    assert [svc.required_matches(n) for n in (1, 2, 3, 4, 5, 8)] == [1, 2, 3, 2, 2, 4]


def test_phrase_and_proximity_boosts():
    # same words, same lengths: plain BM25 ties; "argan oil" in order wins (+0.3), the
    # other title has them 2 words apart (+0.1, within the proximity window)
    res = build(phrase_boost=0.3, proximity_boost=0.1).search("argan oil")
    scores = {i["item_id"]: i["score"] for i in res.items}
    assert ids(res) == ["P1", "P2"]
    flat = build(phrase_boost=0.0, proximity_boost=0.0).search("argan oil")
    base = {i["item_id"]: i["score"] for i in flat.items}
    assert base["P1"] == pytest.approx(base["P2"])
    assert scores["P1"] == pytest.approx(base["P1"] * 1.3, rel=1e-5)
    assert scores["P2"] == pytest.approx(base["P2"] * 1.1, rel=1e-5)


def test_a_complete_word_is_not_expanded_as_a_prefix(service):
    res = service.search("shampoo")
    assert "M4" not in ids(res)  # "shampoo12" is another word
    assert res.query_info["expanded"] == {}
    assert "M10" not in ids(service.search("men"))  # "men" is not "menopause"
    assert ids(service.search("men")) == ["M11"]
    # an incomplete last word is expanded, below an exact match
    res = service.search("curly ha")
    assert res.query_info["expanded"]["ha"] == ["hair"] and ids(res) == ["M3", "M1"]


def test_joined_and_split_forms(service):
    res = service.search("eye liner")
    assert set(ids(res)) == {"M5", "M6"}
    assert res.query_info["joined"] == {"eye liner": "eyeliner"}
    res = service.search("eyeliner")
    assert set(ids(res)) == {"M5", "M6"} and ids(res)[0] == "M5"
    assert res.query_info["split"] == {"eyeliner": "eye liner"}
    res = service.search("lipstick")
    assert ids(res) == ["M7", "M8"] and res.query_info["split"] == {"lipstick": "lip stick"}
    assert set(ids(service.search("lip stick"))) == {"M7", "M8"}
    # a split form needs both parts: "lip" alone does not match "lipstick"
    assert ids(build(split_join=False).search("lipstick")) == ["M7"]


def test_known_words_are_never_replaced(service):
    res = service.search("leg")
    assert ids(res) == ["M9"] and res.query_info["corrected"] == {}
    # a short unknown word is not corrected into a known one: "lego" is not "leg"
    res = service.search("lego")
    assert res.total == 0 and res.query_info["unknown"] == ["lego"]
    assert res.query_info["corrected"] == {}
    assert "leg" in res.query_info["suggestions"]
    assert res.query_info["notice"].startswith("no product matches 'lego'")


def test_unknown_longer_words_are_corrected_and_reported(service):
    res = service.search("moisturising shampoo")
    assert ids(res) == ["M2"]
    assert res.query_info["corrected"] == {"moisturising": "moisturizing"}


def test_a_rare_word_also_matches_its_frequent_neighbour(service):
    res = service.search("shampo")
    # the word as typed first (weight 1), then its 1-edit neighbour, never replaced
    assert ids(res)[0] == "M12" and set(ids(res)) == {"M12", "M1", "M2"}
    assert res.query_info["also_matched"] == {"shampo": "shampoo"}
    assert res.query_info["corrected"] == {}
    # ... only where the neighbour fits the rest of the query: no product has shampoo + bar
    res = service.search("shampo bar")
    assert ids(res) == ["M12"] and res.query_info["also_matched"] == {}
    # at the default ratio (20x), "shampoo" (2 titles) is not frequent enough
    assert build().search("shampo").query_info["also_matched"] == {}


def test_nothing_matches_says_so_and_suggests(service):
    res = service.search("curly lipstick")
    assert res.total == 0 and res.items == []
    assert res.query_info["suggestions"] == ["lipstick", "curly"]
    assert "no product matches" in res.query_info["notice"]


def test_query_info_reports_what_was_understood(service):
    info = service.search("eye liner qzxv").query_info
    assert info["matching"] == "should" and info["required"] == 1
    assert info["unknown"] == ["qzxv"] and info["dropped"] == ["qzxv"]
    assert info["joined"] == {"eye liner": "eyeliner"}
    assert info["tokens"] == ["eye", "liner", "qzxv"]


def test_a_split_form_needs_its_parts_as_neighbours_in_the_title():
    frame = pd.DataFrame(
        {
            "item_id": ["A", "B", "C", "D"],
            "title": ["Sunscreen Lotion", "Sun Screen Spray", "Mineral Screen Gel", "Sun Hat"],
            "category": ["Sun Care", "Sun Care", "Sun Care", "Sun Care > Sunscreen"],
        }
    )
    svc = SearchService.build(frame, None, SearchConfig())
    res = svc.search("sunscreen")
    # the word as typed (A: title, D: category) above the split form in the title (B); C
    # has "sun" (category) and "screen" (title) apart: no match
    assert ids(res) == ["A", "D", "B"]


def test_corrections_alone_do_not_answer_a_query_about_something_else(service):
    # "qzxv" matches nothing and no word is known as typed: the correction is only offered
    res = service.search("qzxv moisturising")
    assert res.total == 0 and res.query_info["corrected"] == {}
    assert res.query_info["suggested"] == {"moisturising": "moisturizing"}
    assert "qzxv moisturizing" in res.query_info["suggestions"]
    # with a word known as typed the correction applies
    res = service.search("qzxv moisturising shampoo")
    assert ids(res) == ["M2"] and res.query_info["corrected"] == {"moisturising": "moisturizing"}
