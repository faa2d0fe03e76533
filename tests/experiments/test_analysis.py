"""Experiment results on hand-built impressions and events: every number has a known answer
from `stats` on per-user arrays written out here."""

import itertools
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from shelfwise.experiments.analysis import Window, experiment_results
from shelfwise.experiments.assignment import ExperimentSpec
from shelfwise.experiments.stats import compare_means, compare_ratios, srm_check
from shelfwise.store.measure import impressions_frame

START = datetime(2026, 2, 1)
END = START + timedelta(days=10)
SPEC = ExperimentSpec.model_validate(
    {
        "experiment_id": "e",
        "variants": [{"name": "ctl"}, {"name": "new", "model": "itemknn"}],
        "pre_period_days": 14,
    }
)
# per user: lists shown, lists clicked, revenue after exposure, pre-period revenue, returned
CONTROL = {
    "c0": (2, 1, 10.0, 5.0, True),
    "c1": (3, 0, 0.0, 0.0, False),
    "c2": (1, 1, 0.0, 8.0, False),
    "c3": (2, 0, 20.0, 12.0, True),
}
TREATED = {
    "t0": (2, 2, 30.0, 10.0, True),
    "t1": (1, 0, 0.0, 0.0, True),
    "t2": (2, 1, 15.0, 4.0, False),
    "t3": (3, 2, 25.0, 9.0, True),
    "t4": (1, 1, 0.0, 0.0, False),
}


def build() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    imp_rows, outcomes, events = [], [], []
    for variant, users in (("ctl", CONTROL), ("new", TREATED)):
        for k, (user, (shown, clicked, revenue, pre, returned)) in enumerate(users.items()):
            t0 = START + timedelta(hours=10 + k)
            for j in range(shown):
                rid = f"{user}-{j}"
                imp_rows.append(
                    {"request_id": rid, "timestamp": t0 + timedelta(minutes=j), "user_id": user,
                     "list_type": "recommendations", "items": ["A", "B"],
                     "experiment_id": "e", "variant": variant, "exposed": True}
                )  # fmt: skip
                if j < clicked:
                    outcomes.append((rid, user, "A", "click", np.nan, t0 + timedelta(minutes=j)))
            if revenue:
                events.append((user, "B", "purchase", revenue, t0 + timedelta(hours=1)))
            if pre:
                events.append((user, "B", "purchase", pre, START - timedelta(days=3)))
            if returned:
                events.append((user, "A", "view", np.nan, t0 + timedelta(days=2)))
            events.append((user, "A", "view", np.nan, t0))
    # an impression outside the experiment and an unexposed one do not count
    imp_rows.append(
        {"request_id": "other", "timestamp": START + timedelta(hours=1), "user_id": "x",
         "list_type": "search", "items": ["A"]}
    )  # fmt: skip
    imp_rows.append(
        {"request_id": "unexposed", "timestamp": START + timedelta(hours=1), "user_id": "y",
         "list_type": "similar", "items": ["A"], "experiment_id": "e", "variant": "new"}
    )  # fmt: skip
    imps = impressions_frame(imp_rows)
    imps["items"] = [["A", "B"]] * (len(imps) - 2) + [["A"], ["A"]]
    imps["propensities"] = None
    out = pd.DataFrame(
        outcomes, columns=["request_id", "user_id", "item_id", "type", "value", "timestamp"]
    )
    ev = pd.DataFrame(events, columns=["user_id", "item_id", "type", "value", "timestamp"])
    return imps, out, ev


def column(users: dict[str, tuple[object, ...]], i: int) -> np.ndarray:
    return np.array([float(v[i]) for v in users.values()])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def results() -> dict:  # type: ignore[type-arg]
    imps, outcomes, events = build()
    window = Window(START, END, START - timedelta(days=14))
    return experiment_results(SPEC, "stopped", window, imps, outcomes, events)


def test_variant_values(results: dict) -> None:  # type: ignore[type-arg]
    ctl, new = results["variants"]["ctl"], results["variants"]["new"]
    assert (ctl["users"], new["users"]) == (4, 5)
    assert ctl["impressions"] == 8 and new["impressions"] == 9
    assert ctl["ctr"] == pytest.approx(2 / 8) and new["ctr"] == pytest.approx(6 / 9)
    assert ctl["conversion_rate"] == pytest.approx(2 / 4)
    assert new["conversion_rate"] == pytest.approx(3 / 5)
    assert ctl["revenue_per_visitor"] == pytest.approx(30 / 4)
    assert new["revenue_per_visitor"] == pytest.approx(70 / 5)
    assert ctl["return_rate_7d"] == pytest.approx(2 / 4)
    assert new["return_rate_7d"] == pytest.approx(3 / 5)


def test_comparisons_reproduce_stats(results: dict) -> None:  # type: ignore[type-arg]
    by_metric = {c["metric"]: c for c in results["comparisons"]}
    assert set(by_metric) == {
        "ctr", "add_to_cart_rate", "conversion_rate", "revenue_per_visitor", "return_rate_7d"
    }  # fmt: skip
    ctr = compare_ratios(
        column(CONTROL, 1), column(CONTROL, 0), column(TREATED, 1), column(TREATED, 0)
    )
    assert by_metric["ctr"]["p_value"] == pytest.approx(ctr.p_value)
    assert by_metric["ctr"]["ci95"] == pytest.approx(list(ctr.ci95))
    assert by_metric["ctr"]["lift"] == pytest.approx((6 / 9) / (2 / 8) - 1)
    revenue = compare_means(
        column(CONTROL, 2), column(TREATED, 2), covariate=(column(CONTROL, 3), column(TREATED, 3))
    )
    got = by_metric["revenue_per_visitor"]
    assert got["cuped"] is True and got["method"] == "welch+cuped"
    assert got["diff"] == pytest.approx(revenue.diff)
    assert got["ci95"] == pytest.approx(list(revenue.ci95))
    assert got["p_value"] == pytest.approx(revenue.p_value)
    assert got["sequential_p_value"] >= got["p_value"]
    assert (got["a"], got["b"]) == ("ctl", "new")


def test_srm_and_daily_looks(results: dict) -> None:  # type: ignore[type-arg]
    chi2, p = srm_check([4, 5], [1, 1])
    assert results["srm"]["counts"] == {"ctl": 4, "new": 5}
    assert results["srm"]["chi2"] == pytest.approx(chi2) and results["srm"]["p_value"] == p
    assert results["srm"]["mismatch"] is False
    days = results["over_time"]
    assert len(days) == 10  # ends of days 1..9, then the end
    assert days[-1]["date"] == END.isoformat()
    assert days[0]["variants"]["ctl"]["users"] == 4
    # nobody's 7 days are over after the first day; all are by the end
    assert days[0]["variants"]["ctl"]["users_return_eligible"] == 0
    assert days[-1]["variants"]["ctl"]["users_return_eligible"] == 4
    seq = [
        next(c["sequential_p_value"] for c in d["comparisons"] if c["metric"] == "ctr")
        for d in days
    ]
    assert all(b <= a for a, b in itertools.pairwise(seq))
    final_ctr = next(c for c in results["comparisons"] if c["metric"] == "ctr")
    assert final_ctr["sequential_p_value"] == pytest.approx(seq[-1])


def test_a_skewed_split_is_flagged() -> None:
    imps, outcomes, events = build()
    extra = impressions_frame(
        [
            {"request_id": f"x{i}", "timestamp": START + timedelta(hours=2), "user_id": f"x{i}",
             "list_type": "recommendations", "items": ["A"], "experiment_id": "e",
             "variant": "new", "exposed": True}
            for i in range(60)
        ]
    )  # fmt: skip
    extra["items"] = [["A"]] * len(extra)
    extra["propensities"] = None
    window = Window(START, END, START - timedelta(days=14))
    both = pd.concat([imps, extra], ignore_index=True)
    skewed = experiment_results(SPEC, "running", window, both, outcomes, events)
    assert skewed["srm"]["counts"] == {"ctl": 4, "new": 65}
    assert skewed["srm"]["mismatch"] is True
