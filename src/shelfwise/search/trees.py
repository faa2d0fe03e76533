"""Scoring with a saved LightGBM model's trees in numpy, without importing LightGBM.

The learned re-ranker (`search.ltr`) trains with LightGBM and saves its text model
(`ltr.model.txt`). Importing LightGBM imports scikit-learn first (on purpose: lightgbm issue
6509, OpenMP), about 1.3 s of CPU on the project's machine, which a one-shot caller such as
`shelfwise search` pays on every call only to walk a few hundred small trees over 100
candidates. `TreeEnsemble.from_model_file` reads the text model and `predict` walks the
trees as LightGBM's `Tree::NumericalDecision` does:

* a missing value (NaN) counts as 0 unless the split's missing type is NaN;
* a split whose missing type is Zero (|x| <= 1e-35) or NaN (x is NaN) sends such a value
  the split's default way (`default_left`);
* otherwise `x <= threshold` goes left; a negative child is leaf `~child`.

Rows are scored in float64 from the float32 features (as LightGBM reads them) and the trees'
outputs are added in tree order, as `GBDT::PredictRaw` does, so the scores are LightGBM's
exactly (`tests/search/test_trees.py` compares them). Models this does not implement
(categorical splits, linear trees, several classes, an objective with an output transform)
give None, and the caller loads LightGBM instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IDENTITY_OBJECTIVES", "TreeEnsemble", "load_booster", "scoring_without_lightgbm"]

IDENTITY_OBJECTIVES = frozenset(
    {"lambdarank", "rank_xendcg", "regression", "regression_l1", "huber", "fair", "quantile"}
)
"""Objectives whose prediction is the raw sum of the trees (no sigmoid, softmax or exp)."""
_ZERO = 1e-35  # LightGBM's kZeroThreshold
_CATEGORICAL, _DEFAULT_LEFT = 1, 2


_WITHOUT_LIGHTGBM = threading.local()


@contextmanager
def scoring_without_lightgbm() -> Iterator[None]:
    """While inside, `load_booster` (in this thread) reads models as `TreeEnsemble`s: for
    one-shot callers (`shelfwise search`), where the LightGBM import costs more than the
    whole rest of the call. A server keeps LightGBM, whose C++ walk is faster per request
    (about 1.5 ms against 10 to 100 ms here for 100 candidates and 300 trees)."""
    before = getattr(_WITHOUT_LIGHTGBM, "on", False)
    _WITHOUT_LIGHTGBM.on = True
    try:
        yield
    finally:
        _WITHOUT_LIGHTGBM.on = before


def load_booster(path: Path) -> Any:
    """A LightGBM text model, as a `TreeEnsemble` inside `scoring_without_lightgbm` when
    the model allows it, else as LightGBM's own `Booster`."""
    if getattr(_WITHOUT_LIGHTGBM, "on", False):
        ensemble = TreeEnsemble.from_model_file(path)
        if ensemble is not None:
            return ensemble
    import lightgbm as lgb

    return lgb.Booster(model_file=str(path))


class TreeEnsemble:
    """The trees of a LightGBM text model as flat arrays (all trees' nodes together)."""

    def __init__(self, text: str, n_features: int, trees: list[dict[str, str]]) -> None:
        self.text = text
        self.n_features = n_features
        self.n_trees = len(trees)
        feats, thresholds, types, lefts, rights, gains, leaves = [], [], [], [], [], [], []
        roots = np.zeros(len(trees), dtype=np.int64)
        node_base = leaf_base = 0
        for t, tree in enumerate(trees):
            n_leaves = int(tree["num_leaves"])
            leaf = np.array(tree["leaf_value"].split(), dtype=np.float64)
            if leaf.size != n_leaves:
                raise ValueError(f"tree {t}: {leaf.size} leaf values for {n_leaves} leaves")
            if n_leaves > 1:
                left = np.array(tree["left_child"].split(), dtype=np.int64)
                right = np.array(tree["right_child"].split(), dtype=np.int64)
                # internal children move by the node base, leaves (~leaf) by the leaf base
                lefts.append(np.where(left >= 0, left + node_base, left - leaf_base))
                rights.append(np.where(right >= 0, right + node_base, right - leaf_base))
                feats.append(np.array(tree["split_feature"].split(), dtype=np.int64))
                thresholds.append(np.array(tree["threshold"].split(), dtype=np.float64))
                types.append(np.array(tree["decision_type"].split(), dtype=np.int64))
                gains.append(np.array(tree["split_gain"].split(), dtype=np.float64))
                roots[t] = node_base
                node_base += n_leaves - 1
            else:
                roots[t] = ~leaf_base
            leaves.append(leaf)
            leaf_base += n_leaves

        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        self.feature = cat(feats, np.int64)
        self.threshold = cat(thresholds, np.float64)
        decision = cat(types, np.int64)
        self.gain = cat(gains, np.float64)
        self.leaf_value = cat(leaves, np.float64)
        if self.feature.size and (self.feature.min() < 0 or self.feature.max() >= n_features):
            raise ValueError("a split names a feature the model does not have")
        if (decision & _CATEGORICAL).any():
            raise ValueError("categorical splits are not implemented")
        # one node table: the splits, then every leaf as a node that leads to itself, so a
        # walk steps all (row, tree) pairs at once until each stands on a leaf
        self.n_splits = inner = self.feature.size
        n_all = inner + self.leaf_value.size
        loops = np.arange(inner, n_all)

        def children(parts: list[np.ndarray]) -> np.ndarray:
            c = cat(parts, np.int64)
            return np.concatenate([np.where(c >= 0, c, inner + ~c), loops])

        self._left, self._right = children(lefts), children(rights)
        self._feature = np.concatenate([self.feature, np.zeros(loops.size, np.int64)])
        self._threshold = np.concatenate([self.threshold, np.full(loops.size, np.inf)])
        pad = np.zeros(loops.size, np.int64)
        self._default_left = np.concatenate([(decision & _DEFAULT_LEFT) != 0, pad.astype(bool)])
        self._missing = np.concatenate([(decision >> 2) & 3, pad])  # 0 none, 1 zero, 2 nan
        self.missing = self._missing[:inner]
        self.roots = np.where(roots >= 0, roots, inner + ~roots)

    @classmethod
    def from_model_file(cls, path: Path | str) -> TreeEnsemble | None:
        """The model in a LightGBM text file, or None when it uses what `predict` does not
        implement (read it with LightGBM then)."""
        text = Path(path).read_text()
        head, _, body = text.partition("\nTree=")
        header: dict[str, str] = {}
        for line in head.splitlines():
            key, _, value = line.partition("=")
            header[key] = value
        objective = header.get("objective", "").split(" ")[0]
        if (
            header.get("num_class", "1") != "1"
            or header.get("num_tree_per_iteration", "1") != "1"
            or "average_output" in header
            or objective not in IDENTITY_OBJECTIVES
        ):
            return None
        body = body.split("\nend of trees", 1)[0]
        trees: list[dict[str, str]] = []
        for block in body.split("\nTree="):
            fields = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
            if fields.get("num_cat", "0") != "0" or fields.get("is_linear", "0") != "0":
                return None
            trees.append(fields)
        try:
            return cls(text, int(header["max_feature_idx"]) + 1, trees)
        except (KeyError, ValueError):
            return None

    def predict(self, features: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """The model's raw scores of feature rows (LightGBM's `Booster.predict`); the
        features are read as float32, as the re-ranker passes them."""
        x = np.asarray(features, dtype=np.float32).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} feature columns, got shape {x.shape}")
        n = x.shape[0]
        node = np.broadcast_to(self.roots, (n, self.n_trees)).copy()
        flat = x.ravel()
        base = (np.arange(n) * self.n_features)[:, None]
        while (node < self.n_splits).any():
            value = flat[base + self._feature[node]]
            missing = self._missing[node]
            nan = np.isnan(value)
            value = np.where(nan & (missing != 2), 0.0, value)
            by_default = ((missing == 1) & (np.abs(value) <= _ZERO)) | ((missing == 2) & nan)
            left = np.where(by_default, self._default_left[node], value <= self._threshold[node])
            node = np.where(left, self._left[node], self._right[node])
        outputs = self.leaf_value[node - self.n_splits]
        total = np.zeros(n, dtype=np.float64)
        for t in range(self.n_trees):  # tree by tree, as LightGBM adds them
            total += outputs[:, t]
        return total

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Total gain (or the number of splits, `importance_type="split"`) per feature."""
        weights = self.gain if importance_type == "gain" else np.ones(self.feature.size)
        return np.bincount(self.feature, weights=weights, minlength=self.n_features)

    def save_model(self, filename: str) -> None:
        """Write the model text back (what LightGBM wrote)."""
        Path(filename).write_text(self.text)
