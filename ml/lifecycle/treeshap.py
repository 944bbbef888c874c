"""Exact path-dependent TreeSHAP of scikit-learn tree ensembles, vectorised with numpy.

The same values as ``shap.TreeExplainer(model)`` (``feature_perturbation="tree_path_dependent"``,
raw output; tests/test_ml_explain.py compares them to 1e-9), without importing shap in the
scoring process: ``import shap`` loads numba, llvmlite and matplotlib (1.8 s measured on this VM
under load, bench/bench_explain.py) and ``ml score`` has a 10 s budget (bench/bench_score.py).

Method (Lundberg et al. 2020, the product form of their Algorithm 2). For one leaf with value
``v`` and the distinct features ``F`` split on along its path, the path-dependent expectation
given the features in ``S`` is ``v * prod_{j in S} o_j * prod_{j in F - S} z_j``, where ``o_j``
(0 or 1) says whether the row follows the path at every split on ``j`` and ``z_j`` is the product
of the path's cover fractions at those splits. The Shapley value of ``i`` in ``F`` is then
``v * (o_i - z_i) * sum_k q_k k! (m-1-k)! / m!`` with ``q`` the coefficients of
``prod_{j != i} (z_j + o_j t)``; that sum is ``integral_0^1 prod_{j != i} (z_j (1-s) + o_j s) ds``
(Beta integrals), a polynomial of degree ``m - 1`` that Gauss-Legendre quadrature integrates
exactly with ``ceil(m / 2)`` points. A tree's values are the sums over its leaves. Leaves are padded
to the same number of features with null players (``z = o = 1``), which leaves every other
player's value unchanged, so all leaves of all trees are computed at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Elements of the largest temporary array (rows x leaves x path features x quadrature points):
#: 2M float64 = 16 MB, so a 200-tree forest (~10^5 leaves) is explained a few rows at a time.
CHUNK_ELEMENTS = 2_000_000
#: Largest table of precomputed leaf values (cases x path features): 4M float64 = 32 MB.
TABLE_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Tree:
    """One tree as node arrays (leaves: ``left == -1``)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray  # the node's output (leaves matter)
    cover: np.ndarray  # training weight reaching the node


def _leaf_paths(tree: Tree) -> list[tuple[int, list[tuple[int, bool]]]]:
    """(leaf, [(node, goes_left), ...]) for every leaf, root first."""
    out, stack = [], [(0, [])]
    while stack:
        node, path = stack.pop()
        if tree.left[node] < 0:
            out.append((node, path))
            continue
        stack.append((int(tree.right[node]), [*path, (node, False)]))
        stack.append((int(tree.left[node]), [*path, (node, True)]))
    return out


class PathTable:
    """All root-to-leaf paths of an ensemble, padded, ready for :meth:`shap_values`.

    ``scale`` multiplies every leaf value (``1 / n_trees`` for a forest's average) and
    ``offset`` is added to the base value (the boosting baseline). ``float32_inputs``: the trees
    compare float32-rounded inputs (scikit-learn's decision trees), not float64 ones (HGB).
    """

    def __init__(
        self,
        trees: list[Tree],
        n_features: int,
        scale: float = 1.0,
        offset: float = 0.0,
        float32_inputs: bool = False,
    ):
        leaves = [(tree, leaf, path) for tree in trees for leaf, path in _leaf_paths(tree)]
        depth = max(1, max(len(path) for _, _, path in leaves))
        width = max(1, max(len({int(t.feature[n]) for n, _ in path}) for t, _, path in leaves))
        n_leaves = len(leaves)
        self.n_features, self.float32_inputs = n_features, float32_inputs
        self.node_feature = np.zeros((n_leaves, depth), dtype="int64")
        self.node_threshold = np.full((n_leaves, depth), np.inf)
        self.node_left = np.ones((n_leaves, depth), dtype=bool)
        self.node_missing_left = np.ones((n_leaves, depth), dtype=bool)
        self.node_slot = np.full((n_leaves, depth), width, dtype="int64")  # padding -> slot `width`
        self.zero = np.ones((n_leaves, width))
        slot_feature = np.full((n_leaves, width), -1, dtype="int64")
        self.value = np.empty(n_leaves)
        for i, (tree, leaf, path) in enumerate(leaves):
            slots: dict[int, int] = {}
            for d, (node, goes_left) in enumerate(path):
                feature = int(tree.feature[node])
                slot = slots.setdefault(feature, len(slots))
                child = tree.left[node] if goes_left else tree.right[node]
                self.node_feature[i, d], self.node_threshold[i, d] = feature, tree.threshold[node]
                self.node_left[i, d], self.node_missing_left[i, d] = (
                    goes_left,
                    tree.missing_left[node],
                )
                self.node_slot[i, d], slot_feature[i, slot] = slot, feature
                self.zero[i, slot] *= (
                    tree.cover[child] / tree.cover[node] if tree.cover[node] > 0 else 0.0
                )
            self.value[i] = float(tree.value[leaf]) * scale
        self.base_value = float(np.sum(self.value * self.zero.prod(axis=1)) + offset)
        # Gauss-Legendre nodes and weights on [0, 1], exact up to degree 2 * points - 1 >= width - 1
        points, weights = np.polynomial.legendre.leggauss(max(1, (width + 1) // 2))
        self.nodes, self.quadrature_weights = (points + 1.0) / 2.0, weights / 2.0
        # summing leaf slots per feature: gather the real slots grouped by feature, then reduceat
        # (a one-hot matmul would go through a multithreaded BLAS, which spins on a busy machine)
        flat = slot_feature.ravel()
        real = np.flatnonzero(flat >= 0)
        order = np.argsort(flat[real], kind="stable")
        self.gather = real[order]
        self.feature_ids, self.starts = np.unique(flat[real][order], return_index=True)
        self._table_of_patterns((slot_feature >= 0).sum(axis=1))

    def _table_of_patterns(self, features_per_leaf: np.ndarray) -> None:
        """Precompute each leaf's values for every pattern of followed / not-followed features
        (``o`` is 0 or 1, so a leaf with ``m`` features has ``2^m`` cases) when that fits in
        TABLE_ELEMENTS: explaining is then a lookup (a boosting model: ~10^4 cases)."""
        width = self.zero.shape[1]
        cases = 2 ** features_per_leaf.astype("int64")
        self.table = None
        if int(cases.sum()) * width > TABLE_ELEMENTS:
            return  # deep forests: the quadrature per row
        self.offsets = np.concatenate([[0], np.cumsum(cases)[:-1]])
        self.bits = np.where(
            np.arange(width)[None, :] < features_per_leaf[:, None], 2 ** np.arange(width), 0
        )
        table = np.zeros((int(cases.sum()), width))
        for m in np.unique(features_per_leaf):
            leaves = np.flatnonzero(features_per_leaf == m)
            patterns = (np.arange(2**m)[:, None] >> np.arange(m)[None, :]) & 1  # 2^m x m
            o = np.ones((2**m, len(leaves), width))
            o[:, :, :m] = patterns[:, None, :]
            phi = self._phi(o, leaves)
            index = self.offsets[leaves][None, :] + np.arange(2**m)[:, None]
            table[index] = phi
        self.table = table

    def shap_values(self, x: np.ndarray) -> np.ndarray:
        """Contributions (rows x features) of ``x`` (float64 rows x features)."""
        x = np.asarray(x, dtype="float64")
        if self.float32_inputs:
            x = x.astype("float32").astype("float64")
        out = np.empty((len(x), self.n_features))
        n_leaves, width = self.zero.shape
        per_row = (
            n_leaves
            * max(self.node_slot.shape[1], width)
            * (2 if self.table is not None else len(self.nodes) + 1)
        )
        rows = max(1, CHUNK_ELEMENTS // per_row)
        for start in range(0, len(x), rows):
            out[start : start + rows] = self._chunk(x[start : start + rows])
        return out

    def _follows(self, x: np.ndarray) -> np.ndarray:
        """``o``: rows x leaves x path features, 1 where the row follows the leaf's path at every
        split on the feature (padding slots: 1)."""
        n, (n_leaves, width) = len(x), self.zero.shape
        values = x[:, self.node_feature]  # rows x leaves x depth
        with np.errstate(invalid="ignore"):
            go_left = np.where(
                np.isnan(values), self.node_missing_left, values <= self.node_threshold
            )
        follows = go_left == self.node_left
        one = np.ones((n, n_leaves, width + 1), dtype=bool)  # slot `width` takes the padding nodes
        leaf_index = np.arange(n_leaves)
        for d in range(self.node_slot.shape[1]):
            one[:, leaf_index, self.node_slot[:, d]] &= follows[:, :, d]
        return one[:, :, :width]

    def _phi(self, o: np.ndarray, leaves: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Leaf-level Shapley values (cases x leaves x path features) of ``o`` for ``leaves``."""
        zero, value = self.zero[leaves], self.value[leaves]
        # sum_k q_k k!(m-1-k)!/m! = integral_0^1 prod_{j != i} (z_j (1 - s) + o_j s) ds: a polynomial
        # of degree m - 1 in s, integrated exactly by Gauss-Legendre quadrature
        factors = zero[None, :, :, None] * (1.0 - self.nodes) + o[..., None] * self.nodes
        product = factors.prod(axis=2, keepdims=True)
        others = np.divide(product, factors, out=np.zeros_like(factors), where=factors != 0)
        return (o - zero[None]) * (others @ self.quadrature_weights) * value[None, :, None]

    def _chunk(self, x: np.ndarray) -> np.ndarray:
        n, (n_leaves, width) = len(x), self.zero.shape
        o = self._follows(x)
        if self.table is not None:
            case = (o * self.bits[None]).sum(axis=2)  # rows x leaves
            phi = self.table[self.offsets[None, :] + case]
        else:
            phi = self._phi(o.astype("float64"))
        out = np.zeros((n, self.n_features))
        if len(self.gather):
            grouped = phi.reshape(n, n_leaves * width)[:, self.gather]
            out[:, self.feature_ids] = np.add.reduceat(grouped, self.starts, axis=1)
        return out


def from_sklearn(model: Any) -> PathTable:
    """The path table of a fitted HistGradientBoostingClassifier (binary; log-odds) or
    RandomForestClassifier (probability of class 1, averaged over trees)."""
    kind = type(model).__name__
    n_features = int(model.n_features_in_)
    if kind == "HistGradientBoostingClassifier":
        predictors = [p for stage in model._predictors for p in stage]
        if any(len(stage) != 1 for stage in model._predictors):
            raise ValueError("only binary HistGradientBoostingClassifier models are supported")
        trees = []
        for predictor in predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            leaf = nodes["is_leaf"].astype(bool)
            threshold = (
                nodes["num_threshold"]
                if "num_threshold" in nodes.dtype.names
                else nodes["threshold"]
            )
            trees.append(
                Tree(
                    left=np.where(leaf, -1, nodes["left"].astype("int64")),
                    right=np.where(leaf, -1, nodes["right"].astype("int64")),
                    feature=nodes["feature_idx"].astype("int64"),
                    threshold=threshold.astype("float64"),
                    missing_left=nodes["missing_go_to_left"].astype(bool),
                    value=nodes["value"].astype("float64"),
                    cover=nodes["count"].astype("float64"),
                )
            )
        return PathTable(trees, n_features, offset=float(np.ravel(model._baseline_prediction)[0]))
    if kind == "RandomForestClassifier":
        trees = []
        for estimator in model.estimators_:
            t = estimator.tree_
            counts = t.value[:, 0, :]
            proba = counts[:, -1] / np.maximum(counts.sum(axis=1), 1e-300)
            missing = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=bool))
            trees.append(
                Tree(
                    left=t.children_left.astype("int64"),
                    right=t.children_right.astype("int64"),
                    feature=np.maximum(t.feature, 0).astype("int64"),
                    threshold=t.threshold.astype("float64"),
                    missing_left=np.asarray(missing, dtype=bool),
                    value=proba,
                    cover=t.weighted_n_node_samples.astype("float64"),
                )
            )
        return PathTable(trees, n_features, scale=1.0 / len(trees), float32_inputs=True)
    raise ValueError(f"no path table for {kind}")
