"""Sequential recommenders: ordered-history plumbing, padding/causality of the networks, and
known-answer order learning (a cyclic catalogue where item i is always followed by i + 1),
including real time through `Engine` (a new event changes the next answer, no retraining).

The interface contract (shapes, seen items, save/load, ...) runs in test_contract.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from shelfwise.artifacts import build_bundle
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.data.sequences import (
    OrderedInteractions,
    Sequences,
    leave_last_out_sequences,
    pad_left,
)
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError, DataError
from shelfwise.evaluation.protocols import fold_validation, prepare
from shelfwise.evaluation.runner import evaluate_model
from shelfwise.recommenders import Recommender, create, load_model
from shelfwise.recommenders.caser import CaserNet
from shelfwise.recommenders.gru4rec import GRU4RecNet
from shelfwise.recommenders.sasrec import SASRecNet
from shelfwise.recommenders.sequential import NegativeSampler, next_item_pairs, window_samples
from shelfwise.serving import Engine
from shelfwise.store import open_store

N_CYCLE = 8
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# tiny, fast configurations that learn the cycle (single CPU thread: tiny tensors). Caser
# reads a window of 1: its height-1 horizontal filters are max-pooled over the window, so a
# longer window cannot tell an order it never saw ([4, 2]) from its reverse
CYCLE_PARAMS: dict[str, dict[str, object]] = {
    "sasrec": {"hidden": 16, "blocks": 1, "dropout": 0.1, "max_len": 6, "lr": 0.01},
    "gru4rec": {"hidden": 16, "embedding": 16, "dropout_embed": 0.0, "max_len": 6, "lr": 0.01},
    "caser": {
        "dim": 16, "window": 1, "targets": 1, "n_vertical": 2, "n_horizontal": 4,
        "dropout": 0.0, "user_embedding": False, "lr": 0.01, "batch_size": 32,
    },
}  # fmt: skip
COMMON = {"epochs": 30, "val_fraction": 0.0, "threads": 1, "device": "cpu", "seed": 3}


# -- plumbing ---------------------------------------------------------------------------------
def test_sequences_from_frame_orders_by_time_then_seq() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["a", "b", "a", "a", "b"],
            "item_id": ["x", "y", "y", "z", "x"],
            "timestamp": pd.to_datetime(
                ["2024-01-03", "2024-01-01", "2024-01-01", "2024-01-03", "2024-01-02"]
            ),
            "seq": [5, 1, 2, 4, 3],
        }
    )
    users = Vocabulary(["a", "b"])
    items = Vocabulary(["x", "y", "z"])
    seqs = Sequences.from_frame(frame, users, items)
    # user a: y (Jan 1), then z (Jan 3, seq 4) before x (Jan 3, seq 5)
    assert seqs.row(0).tolist() == [1, 2, 0]
    assert seqs.row(1).tolist() == [1, 0]
    assert seqs.to_csr(3).toarray().tolist() == [[1, 1, 1], [1, 1, 0]]
    # no seq column: row order breaks the tie (x came after z in the frame? no: x first)
    seqs = Sequences.from_frame(frame.drop(columns="seq"), users, items)
    assert seqs.row(0).tolist() == [1, 0, 2]


def test_sequences_merge_keeps_time_order_and_train_first_on_ties() -> None:
    train = Sequences(np.array([0, 2, 3]), np.array([4, 5, 6]), np.array([1, 3, 1]))
    val = Sequences(np.array([0, 1, 2]), np.array([7, 8]), np.array([2, 1]))
    merged = train.merge(val)
    assert merged.row(0).tolist() == [4, 7, 5]
    assert merged.row(1).tolist() == [6, 8]  # equal times: the train event first
    with pytest.raises(DataError):
        train.merge(Sequences.from_lists([[1]]))


def test_from_csr_and_from_lists() -> None:
    m = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0]], dtype=np.float32))
    assert [r.tolist() for r in Sequences.from_csr(m)] == [[1, 2], [0]]
    s = Sequences.from_lists([[2, 2, 0], []])
    assert s.lengths.tolist() == [3, 0] and s.row(0).tolist() == [2, 2, 0]
    assert s.to_csr(3).toarray().tolist() == [[1, 0, 1], [0, 0, 0]]


def test_pad_left_truncates_to_newest_items() -> None:
    tokens = pad_left([np.array([0, 1, 2, 3]), np.array([5]), np.array([], np.int64)], max_len=3)
    assert tokens.tolist() == [[2, 3, 4], [0, 0, 6], [0, 0, 0]]
    assert pad_left([np.array([1])], 3, width=2).tolist() == [[0, 2]]
    with pytest.raises(ConfigError):
        pad_left([np.array([1])], 0)


def test_next_item_pairs_shift_by_one() -> None:
    inputs, targets = next_item_pairs([np.array([0, 1, 2, 3]), np.array([4, 5])], max_len=2)
    assert inputs.tolist() == [[2, 3], [0, 5]]
    assert targets.tolist() == [[3, 4], [0, 6]]


def test_window_samples_are_caser_sliding_windows() -> None:
    # tokens are item + 1; a block of T targets starts at every position after the first
    # until it reaches the end; earlier windows are left-padded, a short tail right-padded
    seqs = Sequences.from_lists([[0, 1, 2, 3], [4], [5, 6]])
    users, prev, targets = window_samples(seqs, window=2, targets=2)
    assert users.tolist() == [0, 0, 2]
    assert prev.tolist() == [[0, 1], [1, 2], [0, 6]]
    assert targets.tolist() == [[2, 3], [3, 4], [7, 0]]


def test_negative_sampler_avoids_the_users_items() -> None:
    seqs = Sequences.from_lists([[0, 1, 2], [3]])
    sampler = NegativeSampler(seqs, n_items=5, rounds=20)
    out = sampler.sample(np.array([0, 1]), (2, 50), np.random.default_rng(0))
    assert set(out[0].tolist()) <= {3, 4}
    assert 3 not in set(out[1].tolist())


def test_leave_last_out_sequences_holds_out_the_last_event() -> None:
    seqs = Sequences.from_lists([[0, 1, 2], [3, 4], [1, 2, 3, 4]])
    train, val = leave_last_out_sequences(seqs, 5, fraction=1.0, seed=0)
    assert [r.tolist() for r in train] == [[0, 1], [3, 4], [1, 2, 3]]
    assert val.toarray().nonzero()[1].tolist() == [2, 4]


def test_prepare_keeps_the_time_order() -> None:
    rows = [("u", f"i{k}", k) for k in (3, 1, 4, 0, 2)] + [("v", "i0", 0), ("v", "i1", 1)]
    rows += [("v", "i2", 2)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    events["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(events["day"], unit="D")
    data = prepare(events.drop(columns="day"), "loo")
    assert data.sequences is not None and data.validation_sequences is not None
    u = data.users.index("u")
    assert data.items.decode(data.sequences.row(u)).tolist() == ["i0", "i1", "i2"]
    assert data.items.decode(data.validation_sequences.row(u)).tolist() == ["i3"]
    full = data.sequences.merge(data.validation_sequences)
    assert data.items.decode(full.row(u)).tolist() == ["i0", "i1", "i2", "i3"]


# -- networks -----------------------------------------------------------------------------------
def test_sasrec_is_causal_and_padding_free() -> None:
    torch.manual_seed(0)
    net = SASRecNet(n_items=10, max_len=6, hidden=8, blocks=2, heads=2, dropout=0.3).eval()
    tokens = torch.tensor([[0, 0, 3, 4, 5, 6]])
    changed = torch.tensor([[0, 0, 3, 4, 9, 1]])
    with torch.no_grad():
        a, b = net(tokens), net(changed)
        # outputs up to position 3 do not see the later (changed) items
        torch.testing.assert_close(a[:, :4], b[:, :4])
        assert not torch.allclose(a[:, 4:], b[:, 4:])
        # the same items with less padding (a narrower batch) give the same scores
        narrow = net.score_last(torch.tensor([[3, 4, 5, 6]]))
        torch.testing.assert_close(net.score_last(tokens), narrow, rtol=1e-5, atol=1e-5)
        assert net.score_last(tokens).shape == (1, 10)


def test_gru4rec_ignores_padding() -> None:
    torch.manual_seed(0)
    net = GRU4RecNet(10, 8, 8, layers=1, dropout_embed=0.0, dropout_hidden=0.0).eval()
    with torch.no_grad():
        wide = net.score_last(torch.tensor([[0, 0, 0, 2, 7], [1, 2, 3, 4, 5]]))
        narrow = net.score_last(torch.tensor([[2, 7]]))
        torch.testing.assert_close(wide[:1], narrow, rtol=1e-5, atol=1e-5)
        states = net(torch.tensor([[0, 0, 2, 7]]))
        assert torch.all(states[0, :2] == 0)


def test_caser_reads_the_last_window() -> None:
    torch.manual_seed(0)
    net = CaserNet(10, 3, window=3, dim=8, n_vertical=2, n_horizontal=2, dropout=0.0,
                   user_embedding=True).eval()  # fmt: skip
    with torch.no_grad():
        x = net(torch.tensor([0, -1]), torch.tensor([[1, 2, 3], [1, 2, 3]]))
        assert x.shape == (2, 16) and net.logits(x).shape == (2, 10)
        # an unknown user gets the mean user embedding
        torch.testing.assert_close(x[1, 8:], net.user_emb.weight.mean(dim=0))


# -- order learning, real time --------------------------------------------------------------
def cycle_sequences(n_users: int = 64, length: int = 5, seed: int = 0) -> Sequences:
    """User u's items: a random start, then i -> i + 1 (mod N_CYCLE)."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, N_CYCLE, size=n_users)
    return Sequences.from_lists([(s + np.arange(length)) % N_CYCLE for s in starts])


_CYCLE_MODELS: dict[str, Recommender] = {}


def cycle_model(name: str) -> Recommender:
    """A model fitted on the cycle (shared by the read-only tests)."""
    if name not in _CYCLE_MODELS:
        seqs = cycle_sequences()
        model = create(name, **COMMON, **CYCLE_PARAMS[name])
        model.fit(OrderedInteractions(seqs.to_csr(N_CYCLE), seqs))
        _CYCLE_MODELS[name] = model
    return _CYCLE_MODELS[name]


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "caser"])
def test_learns_the_order_and_follows_new_events(name: str) -> None:
    model = cycle_model(name)
    assert model.sequential
    assert model.recommend([2, 3, 4], k=1).ids.tolist() == [5]
    # an event arrives: the next answer moves on, without retraining
    assert model.recommend([2, 3, 4, 5], k=1).ids.tolist() == [6]
    # the same items in another order mean something else: what follows the newest one
    assert model.recommend([2, 3, 4], k=1, exclude_seen=False).ids.tolist() == [5]
    assert model.recommend([3, 4, 2], k=1, exclude_seen=False).ids.tolist() == [3]


@pytest.mark.parametrize("loss", ["sce", "bce"])
def test_sasrec_learns_the_order_with_sampled_losses(loss: str) -> None:
    seqs = cycle_sequences()
    params = {**COMMON, **CYCLE_PARAMS["sasrec"], "loss": loss, "negatives": 4}
    model = create("sasrec", **params).fit(OrderedInteractions(seqs.to_csr(N_CYCLE), seqs))
    assert model.recommend([2, 3, 4], k=1).ids.tolist() == [5]
    assert model.recommend([3, 4, 2], k=1, exclude_seen=False).ids.tolist() == [3]


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "caser"])
def test_batch_with_sequences_matches_single(name: str) -> None:
    model = cycle_model(name)
    seqs = [np.array([6, 7, 0]), np.array([1, 2]), np.array([5])]
    rows = Sequences.from_lists(seqs).to_csr(N_CYCLE)
    batch = model.recommend_batch(rows, k=3, sequences=seqs)
    for r, seq in enumerate(seqs):
        single = model.recommend(seq, k=3)
        assert batch.ids[r].tolist() == single.ids.tolist()
        np.testing.assert_allclose(batch.scores[r], single.scores, rtol=1e-5, atol=1e-5)
    assert batch.ids[0, 0] == 1 and batch.ids[1, 0] == 3 and batch.ids[2, 0] == 6
    with pytest.raises(ValueError):
        model.recommend_batch(rows, k=3, sequences=seqs[:2])


def test_saved_model_keeps_the_order_it_learned(tmp_path: Path) -> None:
    model = cycle_model("sasrec")
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    seqs = [np.array([1, 2, 3]), np.array([7])]
    np.testing.assert_array_equal(loaded.score_sequences(seqs), model.score_sequences(seqs))


def test_bad_sequences_are_refused() -> None:
    model = cycle_model("sasrec")
    with pytest.raises(ValueError, match="outside"):
        model.score_sequences([np.array([0, N_CYCLE])])
    with pytest.raises(ConfigError):
        create("sasrec", hidden=10, heads=3)
    with pytest.raises(ConfigError):
        create("sasrec", loss="hinge")


def test_validation_drives_early_stopping() -> None:
    seqs = cycle_sequences(n_users=48, length=6, seed=1)
    model = create("sasrec", **{**COMMON, **CYCLE_PARAMS["sasrec"], "val_fraction": 0.5})
    model.fit(OrderedInteractions(seqs.to_csr(N_CYCLE), seqs))
    history = model.history
    assert history is not None and history.best_epoch is not None
    assert "ndcg@10" in history.epochs[0]
    # the held-out last items are predictable from the order: near-perfect validation HR
    assert history.best_value is not None and history.best_value > 0.9


def test_runner_passes_ordered_histories() -> None:
    """Leave-last-out with the validation item folded into the history: the test item comes
    right after the history, so a model fed the ordered sequence ranks it first."""
    rng = np.random.default_rng(5)
    rows = []
    for u in range(60):
        start = int(rng.integers(0, N_CYCLE))
        rows += [(f"u{u}", f"i{(start + k) % N_CYCLE}", k) for k in range(5)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    events["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(events["day"], unit="D")
    data = fold_validation(prepare(events.drop(columns="day"), "loo"))
    params = {**COMMON, **CYCLE_PARAMS["sasrec"]}
    run = evaluate_model("sasrec", data, k=1, params=params, negatives=None)
    assert run.error is None, run.error
    assert run.metrics["users_evaluated"] == 60
    assert run.metrics["hr@1"] > 0.95
    # the same model scored from item index order instead loses the thread
    shuffled = replace(data, sequences=Sequences.from_csr(data.train))
    run = evaluate_model("sasrec", shuffled, k=1, params=params)
    assert run.metrics["hr@1"] < 0.6


def test_engine_reads_the_latest_events_at_request_time(tmp_path: Path) -> None:
    """Through the engine and a real store: the bundle's SASRec answers from the events the
    store holds now; one more event moves the answer along the cycle, with no rebuild."""
    items = [Item(item_id=f"I{i}", title=f"item {i}", category="Cycle") for i in range(N_CYCLE)]
    rng = np.random.default_rng(2)
    events = []
    for u in range(48):
        start = int(rng.integers(0, N_CYCLE))
        for k in range(5):
            item = f"I{(start + k) % N_CYCLE}"
            when = T0 + timedelta(hours=u, minutes=k)
            events.append(Event(user_id=f"u{u}", item_id=item, type="purchase", timestamp=when))
    # the visitor's views arrive out of insertion order: the timestamps decide
    visitor = [("I4", 3), ("I2", 1), ("I3", 2)]
    events += [
        Event(user_id="visitor", item_id=i, type="view", timestamp=T0 + timedelta(days=9, hours=h))
        for i, h in visitor
    ]
    store = open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    try:
        store.ingest(
            items=records_to_frame("items", items), events=records_to_frame("events", events)
        )
        models = {"popularity": {}, "sasrec": {**COMMON, **CYCLE_PARAMS["sasrec"]}}
        engine = Engine(store, build_bundle(store, tmp_path / "artifacts", models=models))
        assert engine.user_sequence("visitor").tolist() == [2, 3, 4]
        rec = engine.recommend("visitor", k=1, model="sasrec")
        assert [r["item_id"] for r in rec.items] == ["I5"]
        late = Event(
            user_id="visitor", item_id="I5", type="view", timestamp=T0 + timedelta(days=10)
        )
        store.ingest(events=records_to_frame("events", [late]))
        rec = engine.recommend("visitor", k=1, model="sasrec")
        assert [r["item_id"] for r in rec.items] == ["I6"]
    finally:
        store.close()
