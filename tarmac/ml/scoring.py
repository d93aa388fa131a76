"""One flight's delay probability from a fitted model, without pandas: what the serving API scores.

`training.delay_probability` runs the pipeline over a frame, which is what batch scoring wants.
For one row nearly all of its 20-30 ms goes to pandas and to the bookkeeping of two
ColumnTransformers (the pipeline's encoder, and the one HistGradientBoostingClassifier keeps to
encode its categorical columns again), around a walk of the trees that takes a tenth of a
millisecond for 300 trees. `row_scorer` reads, once per model, what those steps do to one row:
the encoder's ordinal codes, the classifier's own codes for them and the column order its trees
index, and the trees as tuples; it then scores a row by walking the trees in Python.

The walk gives the float batch scoring gives, bit for bit, not an approximation: the same codes,
the same comparison at each node (a missing or unknown category goes where the tree sends missing
values, as scikit-learn's predictor does), the leaf values added one by one to the baseline in
scikit-learn's order, and the classifier's own link function at the end; tests/test_scoring.py
compares the two on every row of a frame. Because it reads fitted attributes scikit-learn keeps
private (the trees, the inner encoder, the baseline, the loss), it takes a model only when it
recognises every step of it, and a row only when it repeats model_input's conversion of each of
its values exactly (strings and None for categories; None, floats and ints for numbers); any
other model or value is scored by `delay_probability` on a one-row frame, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
from sklearn.utils.validation import check_array

from tarmac.features.registry import categorical_features, model_features
from tarmac.ml.training import delay_probability

RowScorer = Callable[[Mapping[str, Any]], float]
log = logging.getLogger("tarmac.ml.scoring")

# ints this large or smaller are floats exactly, so float(v) is what pandas' astype("float64") gives
EXACT_INT = 2**53
_UNSUPPORTED = object()  # a value the walk does not convert: the row takes the general path


class UnsupportedModel(ValueError):
    """A model with a step the walk does not repeat exactly: it is scored the general way."""


def general_probability(model: Any, values: Mapping[str, Any]) -> float:
    """Batch scoring's function on a one-row frame: right for any model, and slow for one row."""
    return float(delay_probability(model, pd.DataFrame([values]))[0])


_last: tuple[Any, RowScorer] | None = None
_build_lock = threading.Lock()


def row_scorer(model: Any) -> RowScorer:
    """The function that scores one feature vector (a mapping of the registry's features) with
    `model`: the tree walk when the model is a pipeline it recognises, else the general path.

    The scorer of the model last asked for is kept (building the walk reads every node of every
    tree: 25 ms for 43 trees, 150 ms for 300), and with it that model: serving asks for its
    champion's on every request."""
    global _last
    last = _last
    if last is not None and last[0] is model:
        return last[1]
    with _build_lock:
        if _last is not None and _last[0] is model:
            return _last[1]
        try:
            scorer: RowScorer = TreeWalk(model).probability
        except UnsupportedModel:
            scorer = partial(general_probability, model)
        except Exception:  # a shape the checks did not foresee: the walk is an optimisation, not a need
            log.warning("scoring one row with batch scoring's function: the tree walk could not be built",
                        exc_info=True)
            scorer = partial(general_probability, model)
        _last = (model, scorer)
        return scorer


@dataclass(frozen=True)
class _Codes:
    """A fitted OrdinalEncoder's output for one column, as OrdinalEncoder.transform computes it:
    a known category's index as a float (encoded_missing_value for the NaN category), and
    unknown_value for anything else. None is an ordinary category when it was seen in training."""

    known: dict[Any, float]
    nan: float  # the code of a NaN
    unknown: float

    def __call__(self, value: Any) -> float:
        if value is not None and value != value:  # NaN
            return self.nan
        return self.known.get(value, self.unknown)


def _ordinal_codes(encoder: Any, kind: str) -> list[_Codes]:
    """Each column's codes, or UnsupportedModel if the encoder does what `_Codes` does not."""
    if type(encoder) is not OrdinalEncoder:
        raise UnsupportedModel(f"{type(encoder).__name__} is not an OrdinalEncoder")
    if (encoder.handle_unknown != "use_encoded_value" or getattr(encoder, "_infrequent_enabled", False)
            or np.dtype(encoder.dtype) != np.float64):
        raise UnsupportedModel("an OrdinalEncoder with unknown categories refused, infrequent ones grouped, "
                               "or codes that are not float64")
    missing = encoder._missing_indices
    unknown = float(encoder.unknown_value)
    out = []
    for column, categories in enumerate(encoder.categories_):
        if categories.dtype.kind != kind:
            raise UnsupportedModel(f"categories of dtype {categories.dtype}, not of kind {kind!r}")
        known, nan = {}, unknown
        for index, category in enumerate(categories):
            code = float(encoder.encoded_missing_value) if missing.get(column) == index else float(index)
            if isinstance(category, float | np.floating) and category != category:
                nan = code
            else:
                known[category] = code
        out.append(_Codes(known, nan, unknown))
    return out


def _is_identity(transformer: Any) -> bool:
    """'passthrough', which a fitted ColumnTransformer keeps as a FunctionTransformer without a function."""
    return (isinstance(transformer, str) and transformer == "passthrough") or (
        type(transformer) is FunctionTransformer and transformer.func is None and not transformer.validate
    )


def _is_float_check(transformer: Any) -> bool:
    """The classifier's own step for its numeric columns: check_array to float64, NaN and inf kept;
    the identity on the float64 values the pipeline's encoder gives it."""
    func = getattr(transformer, "func", None)
    return (type(transformer) is FunctionTransformer and isinstance(func, partial) and func.func is check_array
            and not func.args and func.keywords == {"dtype": [np.float64], "ensure_all_finite": False}
            and transformer.inverse_func is None and not transformer.validate)


def _column_indices(columns: Any, names: Sequence[str]) -> list[int]:
    """A ColumnTransformer's column selection (names, indices or a boolean mask) as indices."""
    names = list(names)
    selected = np.asarray(columns)
    if selected.dtype == bool:
        return [int(i) for i in np.flatnonzero(selected)]
    if selected.dtype.kind in "iu":
        return [int(i) for i in selected]
    if selected.dtype.kind in "OU" and all(isinstance(c, str) and c in names for c in selected):
        return [names.index(str(c)) for c in selected]
    raise UnsupportedModel(f"a column selection {columns!r} the walk does not read")


def _layout(transformer: ColumnTransformer, names: Sequence[str], kind: str) -> list[tuple[int, _Codes | None]]:
    """For each output column of a fitted ColumnTransformer, in order: the input column it comes
    from and the codes it is encoded with (None: passed as it is)."""
    if type(transformer) is not ColumnTransformer or getattr(transformer, "sparse_output_", False):
        raise UnsupportedModel(f"{type(transformer).__name__} is not a dense ColumnTransformer")
    out: list[tuple[int, _Codes | None] | None] = [None] * sum(
        s.stop - s.start for s in transformer.output_indices_.values())
    for name, step, columns in transformer.transformers_:
        if isinstance(step, str) and step == "drop":
            continue
        indices = _column_indices(columns, names)
        if type(step) is OrdinalEncoder:
            codes: list[_Codes | None] = list(_ordinal_codes(step, kind))
        elif _is_identity(step) or _is_float_check(step):
            codes = [None] * len(indices)
        else:
            raise UnsupportedModel(f"a {type(step).__name__} step ({name!r})")
        where = transformer.output_indices_[name]
        if where.stop - where.start != len(indices) or len(codes) != len(indices):
            raise UnsupportedModel(f"step {name!r} does not give one column per input column")
        for position, index, code in zip(range(where.start, where.stop), indices, codes):
            out[position] = (index, code)
    if any(column is None for column in out):
        raise UnsupportedModel("a ColumnTransformer whose output the walk cannot place")
    return out  # type: ignore[return-value]


def _bits(words: Any) -> frozenset[int]:
    """The categories in one of scikit-learn's bitsets (8 uint32 words: categories 0..255)."""
    words = [int(w) for w in words]
    return frozenset(c for c in range(256) if words[c >> 5] >> (c & 31) & 1)


class TreeWalk:
    """A fitted Pipeline([ColumnTransformer of OrdinalEncoder / passthrough, binary
    HistGradientBoostingClassifier]) taken apart for one row at a time (UnsupportedModel for any
    other model). `probability(values)` equals delay_probability(model, one-row frame)[0]."""

    def __init__(self, model: Any):
        if type(model) is not Pipeline or len(model.steps) != 2:
            raise UnsupportedModel(f"{type(model).__name__} is not a two-step Pipeline")
        self.model = model
        encoder, classifier = model.steps[0][1], model.steps[1][1]
        if type(classifier) is not HistGradientBoostingClassifier:
            raise UnsupportedModel(f"{type(classifier).__name__} is not a HistGradientBoostingClassifier")
        features = model_features()
        try:
            if list(encoder.feature_names_in_) != features:
                raise UnsupportedModel("the model was fitted on other columns than the registry's features")
            outer = _layout(encoder, features, "O")
            if list(classifier.feature_names_in_) != [features[i] for i, _ in outer]:
                raise UnsupportedModel("the classifier's columns are not its encoder's output")
            inner = ([(i, None) for i in range(len(outer))] if classifier._preprocessor is None
                     else _layout(classifier._preprocessor, classifier.feature_names_in_, "f"))
            if classifier.n_trees_per_iteration_ != 1 or len(classifier.classes_) != 2:
                raise UnsupportedModel("not a binary classifier")
            baseline = classifier._baseline_prediction
            known, f_index = classifier._bin_mapper.make_known_categories_bitsets()
            predictors = classifier._predictors
            self._link = classifier._loss.predict_proba
        except AttributeError as error:  # another scikit-learn than the one this was written for
            raise UnsupportedModel(f"a fitted attribute is missing: {error}") from None
        if baseline.shape != (1, 1) or baseline.dtype != np.float64:
            raise UnsupportedModel("a baseline that is not one float64")
        categorical = set(categorical_features())
        # each column the trees index: (feature, categorical, its codes in the pipeline's encoder,
        # its codes in the classifier's); model_input gives strings to the encoder, floats past it
        self._columns = []
        for index, inner_codes in inner:
            feature_index, outer_codes = outer[index]
            name = features[feature_index]
            if (outer_codes is not None) != (name in categorical):
                raise UnsupportedModel(f"feature {name!r} is encoded as the registry does not say")
            self._columns.append((name, outer_codes is not None, outer_codes, inner_codes))
        self._baseline = float(baseline[0, 0])
        self._trees = tuple(self._nodes(tree, known, f_index) for (tree,) in predictors)

    @staticmethod
    def _nodes(tree: Any, known: np.ndarray, f_index: np.ndarray) -> tuple[tuple, ...]:
        """A tree as tuples: a leaf is (-1, value); a split (feature, threshold, left, right, the
        child missing values go to, categories going left, categories known) where the last two
        are None for a numeric split."""
        nodes = []
        for node in tree.nodes:
            if node["is_leaf"]:
                nodes.append((-1, float(node["value"])))
                continue
            feature, left, right = int(node["feature_idx"]), int(node["left"]), int(node["right"])
            missing = left if node["missing_go_to_left"] else right
            if node["is_categorical"]:
                nodes.append((feature, None, left, right, missing,
                              _bits(tree.raw_left_cat_bitsets[node["bitset_idx"]]),
                              _bits(known[f_index[feature]])))
            else:
                nodes.append((feature, float(node["num_threshold"]), left, right, missing, None, None))
        return tuple(nodes)

    def row(self, values: Mapping[str, Any]) -> list[float] | None:
        """The row the trees see, or None if a value is not one whose conversion this repeats."""
        row = []
        for name, categorical, outer, inner in self._columns:
            value = values.get(name, _UNSUPPORTED)
            if categorical:  # model_input: a string, or None when missing
                if value is None or isinstance(value, str):
                    pass
                elif isinstance(value, float) and value != value:
                    value = None
                else:
                    return None
                value = outer(value)
            elif value is None:  # model_input: pd.to_numeric(...).astype("float64")
                value = float("nan")
            elif type(value) is float:
                pass
            elif type(value) in (int, bool) and -EXACT_INT <= value <= EXACT_INT:
                value = float(value)
            else:
                return None
            row.append(value if inner is None else inner(value))
        return row

    def raw(self, row: Sequence[float]) -> float:
        """The sum of the trees' leaves, as scikit-learn's _raw_predict adds them (the baseline
        first, then each tree's leaf in turn) and its predictor reaches them."""
        total = 0.0
        total += self._baseline
        for nodes in self._trees:
            node = nodes[0]
            while node[0] >= 0:
                value = row[node[0]]
                if value != value:  # NaN: missing
                    node = nodes[node[4]]
                elif node[5] is None:
                    node = nodes[node[2] if value <= node[1] else node[3]]
                elif value < 0:  # out of range: missing
                    node = nodes[node[4]]
                else:  # a category the trees never saw goes where missing values go; the encoders
                    # already make those NaN, but the predictor has the branch, and so has this
                    category = int(value)
                    node = nodes[node[2] if category in node[5] else node[3] if category in node[6] else node[4]]
            total += node[1]
        return total

    def probability(self, values: Mapping[str, Any]) -> float:
        row = self.row(values)
        if row is None:
            return general_probability(self.model, values)
        return float(self._link(np.array([[self.raw(row)]]))[0, 1])
