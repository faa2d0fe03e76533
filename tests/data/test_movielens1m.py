"""MovieLens 1M: the full/partial ratings choice on tiny synthetic files, and the real files
checked against the counts in ../shared/data/movielens-1m/SOURCE.md."""

import gzip
import json
import logging
from pathlib import Path

import pytest

from shelfwise.cli import main
from shelfwise.data import datasets
from shelfwise.data.datasets import Dataset, available, is_available, load_dataset
from shelfwise.errors import DataError

MOVIES = (
    "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "260::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Fantasy|Sci-Fi\n"
    "73::Misérables, Les (1995)::Drama|Musical\n"
    "999::Never Rated (2000)::Drama\n"
)
USERS = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n"
RATINGS = "1::1::5::978300760\n1::260::3::978302109\n2::73::4::978298413\n"


def write_ml1m(root: Path, ratings: str | None = None, partial: str | None = None) -> Path:
    folder = root / "movielens-1m"
    folder.mkdir()
    (folder / "movies.dat").write_bytes(MOVIES.encode("latin-1"))
    (folder / "users.dat").write_bytes(USERS.encode("latin-1"))
    if ratings is not None:
        (folder / "ratings.dat").write_bytes(ratings.encode("latin-1"))
    if partial is not None:
        with gzip.open(folder / datasets.ML1M_PARTIAL_RATINGS, "wb") as fh:
            fh.write(partial.encode("latin-1"))
    return folder


@pytest.fixture
def fresh_warning(monkeypatch):
    """Forget which folders were already warned about, so the warning is seen here."""
    monkeypatch.setattr(datasets, "_warned_partial", set())


def test_registered():
    assert "movielens-1m" in available()


def test_full_ratings_file_is_preferred(tmp_path, caplog, fresh_warning):
    # the partial file is there too, with other content: ratings.dat must win
    write_ml1m(tmp_path, ratings=RATINGS, partial="3::1::1::978300000\n")
    with caplog.at_level(logging.WARNING, logger="shelfwise.data.datasets"):
        ds = load_dataset("movielens-1m", tmp_path)
    assert isinstance(ds, Dataset) and ds.name == "movielens-1m"
    assert "partial" not in ds.notes and ds.notes["ratings_file"] == "ratings.dat"
    assert not caplog.records
    assert (len(ds.items), len(ds.users), len(ds.events)) == (4, 2, 3)
    assert ds.events["event_id"].tolist() == ["ml1m-1", "ml1m-2", "ml1m-3"]
    assert ds.events["value"].tolist() == [5.0, 3.0, 4.0]
    items = ds.items.set_index("item_id")
    # titles with ':' survive, latin-1 is decoded, genres become the category
    assert items.loc["260", "title"] == "Star Wars: Episode IV - A New Hope (1977)"
    assert items.loc["73", "title"] == "Misérables, Les (1995)"
    assert items.loc["1", "category"] == "Movies > Animation"
    assert json.loads(items.loc["260", "attributes"]) == {
        "genres": ["Action", "Adventure", "Fantasy", "Sci-Fi"],
        "year": 1977,
    }
    assert items["created_at"].isna().tolist() == [False, False, False, True]  # 999 unrated
    user1 = json.loads(ds.users.set_index("user_id").loc["1", "attributes"])
    assert user1 == {
        "gender": "F",
        "age": 1,
        "age_range": "Under 18",
        "occupation": "K-12 student",
        "occupation_id": 10,
        "zip": "48067",
    }


def test_partial_file_warns_once_and_is_marked(tmp_path, caplog, fresh_warning):
    write_ml1m(tmp_path, partial=RATINGS)
    with caplog.at_level(logging.WARNING, logger="shelfwise.data.datasets"):
        ds = load_dataset("movielens-1m", tmp_path)
        again = load_dataset("movielens-1m", tmp_path)
    assert len(ds.events) == len(again.events) == 3
    assert ds.notes["ratings_file"] == datasets.ML1M_PARTIAL_RATINGS
    assert "users 1-2999 only" in ds.notes["partial"]
    assert "NOT comparable" in again.notes["partial"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "PARTIAL" in warnings[0]


def test_missing_ratings_names_both_files_and_the_folder(tmp_path):
    folder = write_ml1m(tmp_path)
    with pytest.raises(DataError) as err:
        load_dataset("movielens-1m", tmp_path)
    message = str(err.value)
    assert str(folder) in message
    assert "ratings.dat" in message and datasets.ML1M_PARTIAL_RATINGS in message


def test_malformed_file_is_a_data_error(tmp_path):
    write_ml1m(tmp_path, ratings="1::1::5\n1::2::x::978300760::9::9\n")
    with pytest.raises(DataError, match=r"ratings\.dat"):
        load_dataset("movielens-1m", tmp_path)


def test_cli_lists_it(tmp_path, capsys, monkeypatch):
    write_ml1m(tmp_path, ratings=RATINGS)
    monkeypatch.setenv("SHELFWISE_DATA_DIR", str(tmp_path))
    assert main(["datasets"]) == 0
    assert f"movielens-1m       {tmp_path / 'movielens-1m'}" in capsys.readouterr().out


@pytest.mark.realdata
def test_movielens_1m_real_files():
    if not is_available("movielens-1m"):
        pytest.skip("dataset movielens-1m not found (set SHELFWISE_DATA_DIR)")
    ds = load_dataset("movielens-1m")
    assert len(ds.items) == 3883  # movies.dat
    ev = ds.events
    if "partial" in ds.notes:  # SOURCE.md: ratings.PARTIAL_users0001-2999.dat.gz
        assert len(ev) == 487_650
        assert set(ev["user_id"]) == {str(u) for u in range(1, 3000)}
        assert len(ds.users) == 2999
        assert ev["item_id"].nunique() == 3615
        assert ev["value"].value_counts().sort_index().tolist() == [
            27_472,
            53_838,
            127_216,
            170_579,
            108_545,
        ]
        assert str(ev["timestamp"].min()) == "2000-10-04 00:52:14"  # 970620734
        assert str(ev["timestamp"].max()) == "2003-02-27 23:31:15"  # 1046388675
    else:  # the full ratings.dat (README)
        assert (len(ev), len(ds.users)) == (1_000_209, 6040)
    first = ev.iloc[0]
    assert (first["user_id"], first["item_id"], first["value"]) == ("1", "1193", 5.0)
    assert first["timestamp"].timestamp() == 978300760
    assert (ev["user_id"] == "1").sum() == 53
    assert ev.groupby("user_id").size().min() >= 20
    assert ev["event_id"].is_unique
    items = ds.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "category"] == "Movies > Animation"
    assert ds.items["title"].str.contains("Misérables").any()
    user1 = json.loads(ds.users.set_index("user_id").loc["1", "attributes"])
    assert (user1["gender"], user1["age"], user1["occupation"]) == ("F", 1, "K-12 student")
