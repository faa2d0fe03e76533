from shelfwise.search.autocomplete import Autocomplete, normalise_phrase


def build():
    return Autocomplete.build(
        titles=["Brewmaster Coffee Maker", "Arctic Coffee Grinder", "Steel Kettle"],
        title_weights=[5.0, 1.0, 2.0],
        categories={"Home > Kitchen > Coffee Makers": 10.0},
        queries={"coffee maker": 30, "coffee beans": 10, "kettle": 4},
    )


def texts(suggestions):
    return [s.text for s in suggestions]


def test_prefix_ranks_queries_then_categories_then_titles_by_popularity():
    ac = build()
    got = ac.suggest("coff", k=10)
    # phrases starting with what was typed come first, by kind prior x popularity
    assert texts(got)[:2] == ["coffee maker", "coffee beans"]
    assert "Home > Kitchen > Coffee Makers" in texts(got)
    assert texts(got).index("Brewmaster Coffee Maker") < texts(got).index("Arctic Coffee Grinder")
    assert {s.kind for s in got} == {"query", "category", "title"}


def test_every_typed_word_must_match_and_last_word_is_a_prefix():
    ac = build()
    assert texts(ac.suggest("coffee gr", k=5)) == ["Arctic Coffee Grinder"]
    assert texts(ac.suggest("coffee grinder ", k=5)) == ["Arctic Coffee Grinder"]
    assert ac.suggest("coffee tea", k=5) == []
    assert ac.suggest("", k=5) == []


def test_typos_are_tolerated_but_discounted():
    ac = build()
    assert texts(ac.suggest("cofee mak", k=3))[0] == "coffee maker"
    assert set(texts(ac.suggest("ketlte", k=3))) == {"kettle", "Steel Kettle"}
    exact = ac.suggest("kettle", k=1)[0].score
    typo = ac.suggest("ketlte", k=1)[0].score
    assert typo < exact


def test_live_queries_and_round_trip():
    ac = build()
    ac.add_queries(["Steel Kettle"] * 50)
    assert texts(ac.suggest("ste", k=1)) == ["steel kettle"]
    again = Autocomplete.from_dict(ac.to_dict())
    assert texts(again.suggest("ste", k=3)) == texts(ac.suggest("ste", k=3))
    assert normalise_phrase("  Crème   BRÛLÉE ") == "creme brulee"
