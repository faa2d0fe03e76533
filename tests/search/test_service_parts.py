"""The modules `search.service` is split into: the names keep their old import paths, and
the change log behind `SearchService.changes_since` forgets what it no longer holds."""

import importlib

import numpy as np
import pytest

from shelfwise.search.catalog import ChangeLog


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("SearchService", "service"),
        ("SearchConfig", "config"),
        ("SearchResponse", "config"),
        ("event_popularity", "catalog"),
        ("past_queries", "catalog"),
    ],
)
def test_service_names_import_from_the_service_module_and_the_package(name, home):
    obj = getattr(importlib.import_module(f"shelfwise.search.{home}"), name)
    assert obj.__module__ == f"shelfwise.search.{home}"
    service = importlib.import_module("shelfwise.search.service")
    assert getattr(service, name) is obj
    assert name in service.__all__
    if name[0].isupper():  # the package face lists the classes only
        assert getattr(importlib.import_module("shelfwise.search"), name) is obj


def test_change_log_answers_only_while_it_reaches_back():
    log = ChangeLog(maxlen=2)
    assert log.revision == 0 and log.since(0).tolist() == []
    log.record(np.array([5, 1]))
    log.record(np.array([1, 3]))
    assert log.revision == 2
    assert log.since(0).tolist() == [1, 3, 5]
    assert log.since(1).tolist() == [1, 3]
    log.record(np.array([9]))  # the change of revision 1 falls out of the log
    assert log.since(0) is None  # rows changed at revision 1 are no longer known
    assert log.since(1).tolist() == [1, 3, 9]
    assert log.since(3).tolist() == []
    assert log.since(4) is None  # a revision the log never had


def test_change_log_keeps_its_own_copy_of_the_rows():
    log = ChangeLog()
    rows = np.array([2, 4])
    log.record(rows)
    rows[0] = 7
    assert log.since(0).tolist() == [2, 4]
