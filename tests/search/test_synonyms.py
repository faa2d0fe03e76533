import pytest

from shelfwise.errors import DataError
from shelfwise.search.analysis import Analyzer
from shelfwise.search.synonyms import Synonyms

RULES = """
# comment line
tv, television, telly
cell phone, mobile phone
laptop => notebook, ultrabook   # one-way
"""


def test_parse_and_round_trip():
    syn = Synonyms.parse(RULES.splitlines())
    assert syn.equivalent == [["tv", "television", "telly"], ["cell phone", "mobile phone"]]
    assert syn.one_way == [(["laptop"], ["notebook", "ultrabook"])]
    assert Synonyms.from_dict(syn.to_dict()) == syn
    assert len(syn) == 3


def test_matches_are_analysed_longest_first_and_one_way():
    a = Analyzer()
    syn = Synonyms.parse(RULES.splitlines())
    m = syn.match(a.terms("Televisions and cell phones"), a)
    assert [(x.start, x.end) for x in m] == [(0, 1), (1, 3)]
    assert ("tv",) in m[0].alternatives
    assert m[1].alternatives == (("mobil", "phone"),)
    assert syn.match(a.terms("laptop"), a)[0].alternatives == (("notebook",), ("ultrabook",))
    assert syn.match(a.terms("notebook"), a) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [("tv", "two or more"), ("a => ", "both sides"), ("a => b => c", "one '=>'")],
)
def test_bad_lines_name_the_line(line, message):
    with pytest.raises(DataError, match=f"line 2: .*{message}"):
        Synonyms.parse(["# ok", line])


def test_from_file(tmp_path):
    path = tmp_path / "syn.txt"
    path.write_text("sofa, couch\n", encoding="utf-8")
    assert Synonyms.from_file(path).equivalent == [["sofa", "couch"]]
    with pytest.raises(DataError, match="does not exist"):
        Synonyms.from_file(tmp_path / "missing.txt")
