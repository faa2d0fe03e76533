"""SASRec exported to ONNX and run with onnxruntime: the same scores as torch (fp32, max abs
difference < 1e-4) on varied histories, the same rankings after dynamic int8 quantisation
(top items agree), metadata and error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from shelfwise.data.sequences import OrderedInteractions, Sequences
from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.export import OnnxSequentialScorer, export_sasrec
from shelfwise.recommenders import Recommender, create

N_ITEMS = 30


@pytest.fixture(scope="module")
def sasrec() -> Recommender:
    """A small SASRec (2 blocks, 2 heads) fitted on chains i -> i + 1 over 30 items."""
    rng = np.random.default_rng(0)
    starts = rng.integers(0, N_ITEMS, size=120)
    seqs = Sequences.from_lists(
        [(s + np.arange(int(rng.integers(2, 12)))) % N_ITEMS for s in starts]
    )
    model = create(
        "sasrec", hidden=16, blocks=2, heads=2, dropout=0.2, max_len=8, epochs=8, lr=0.01,
        val_fraction=0.0, threads=1, device="cpu", seed=1,
    )  # fmt: skip
    return model.fit(OrderedInteractions(seqs.to_csr(N_ITEMS), seqs))


def histories() -> list[np.ndarray]:
    """Empty, short, exactly max_len and longer-than-max_len histories, with repeats."""
    rng = np.random.default_rng(1)
    out = [np.zeros(0, np.int64), np.array([3]), np.array([5, 5, 6])]
    out += [rng.integers(0, N_ITEMS, size=n) for n in (7, 8, 9, 20)]
    return out


@pytest.fixture(scope="module")
def exported(sasrec: Recommender, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return export_sasrec(sasrec, tmp_path_factory.mktemp("onnx") / "sasrec.onnx", quantize=True)


def test_fp32_parity_with_torch(sasrec: Recommender, exported: dict[str, Path]) -> None:
    scorer = OnnxSequentialScorer(exported["fp32"], threads=1)
    assert scorer.max_len == 8 and scorer.n_items == N_ITEMS
    seqs = histories()
    ours = scorer.score_sequences(seqs)
    theirs = sasrec.score_sequences(seqs)
    assert ours.shape == theirs.shape == (len(seqs), N_ITEMS)
    assert float(np.max(np.abs(ours - theirs))) < 1e-4
    # the scorer recommends like the model
    for seq in seqs[1:]:
        assert scorer.recommend(seq, k=5).ids.tolist() == sasrec.recommend(seq, k=5).ids.tolist()


def test_int8_keeps_the_ranking(sasrec: Recommender, exported: dict[str, Path]) -> None:
    assert exported["int8"].name == "sasrec.int8.onnx"
    ops = {node.op_type for node in onnx.load(str(exported["int8"])).graph.node}
    assert "MatMulInteger" in ops  # the weights' matrix products run in int8
    scorer = OnnxSequentialScorer(exported["int8"], threads=1)
    seqs = histories()[1:]
    ours = scorer.score_sequences(seqs)
    theirs = sasrec.score_sequences(seqs)
    for a, b in zip(ours, theirs, strict=True):
        assert int(np.argmax(a)) == int(np.argmax(b))
        top_a, top_b = set(np.argsort(-a)[:5].tolist()), set(np.argsort(-b)[:5].tolist())
        assert len(top_a & top_b) >= 4
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.99


def test_errors(tmp_path: Path, exported: dict[str, Path]) -> None:
    with pytest.raises(ConfigError):
        export_sasrec(create("popularity"), tmp_path / "x.onnx")
    with pytest.raises(NotFittedError):
        export_sasrec(create("sasrec"), tmp_path / "x.onnx")
    with pytest.raises(DataError):
        OnnxSequentialScorer(tmp_path / "missing.onnx")
    scorer = OnnxSequentialScorer(exported["fp32"])
    with pytest.raises(ValueError, match="outside"):
        scorer.score_sequences([np.array([N_ITEMS])])
    with pytest.raises(ValueError):
        scorer.score_tokens(np.zeros((1, 3), np.int64))
