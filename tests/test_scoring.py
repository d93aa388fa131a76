"""The single-row scorer the serving API uses: the same probability as batch scoring, to the bit,
on every row of a frame built like the training set (unknown categories, missing values of every
kind, every column type), and the general path for a model or a value it does not take."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from tarmac.features.registry import categorical_features, feature_registry, model_features
from tarmac.ml import scoring
from tarmac.ml.scoring import TreeWalk, UnsupportedModel, general_probability, row_scorer
from tarmac.ml.training import LABEL, delay_probability, fit_model, model_input
from tarmac.settings.ml import ModelParameters

CARRIERS = ["9E", "AA", "B6", "DL", "EV", "MQ", "UA", "US", "WN", "VX"]
DESTS = ["ATL", "BOS", "CLT", "DCA", "DEN", "DFW", "FLL", "LAX", "MCO", "MIA", "ORD", "SFO"]
POOLS = {"carrier": CARRIERS, "origin": ["EWR", "JFK", "LGA"], "dest": DESTS}
INTEGERS = {"integer", "bigint"}


def flights(n: int, seed: int, unseen: bool = False) -> pd.DataFrame:
    """A frame with gold.training_set's feature columns as DuckDB gives them: categories as
    strings or None, integers as Int64 with NA, doubles with NaN. Training sees None among
    carriers (so None is one of its categories) but never among destinations (so there it is
    unknown); `unseen` adds categories training never saw."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for name, feature in feature_registry().items():
        if feature.categorical:
            pool = POOLS[name] + (["ZZ", "XXX", ""] if unseen else [])
            values = rng.choice(pool, n).astype(object)
            values[rng.random(n) < (0.05 if name == "carrier" or unseen else 0.0)] = None
            columns[name] = values
        elif feature.dtype in INTEGERS:
            values = pd.array(rng.integers(0, 200, n), dtype="Int64")
            values[rng.random(n) < 0.1] = pd.NA
            columns[name] = values
        else:
            values = rng.normal(10, 25, n).round(3)
            values[rng.random(n) < 0.1] = np.nan
            columns[name] = values
    frame = pd.DataFrame(columns)
    signal = (frame["origin_dep_delay_avg_1h"].fillna(30) / 25 + frame["carrier"].isin(["EV", "MQ", None]) * 1.2
              + frame["dest"].isin(["ORD", "SFO", "ATL"]) * 0.8 + (frame["origin"] == "LGA") * 0.5
              + frame["temp_f"].isna() * 0.7 - frame["plane_seats"].fillna(100).astype(float) / 200)
    frame[LABEL] = (signal + rng.normal(0, 1, n)) > 1.2
    return frame


def records(frame: pd.DataFrame) -> list[dict]:
    """Each row as the serving API builds a feature vector: Python ints, floats and strings, None
    when missing; a NaN left in some floats and categories, as a caller may send it."""
    out = []
    for i, row in enumerate(frame[model_features()].to_dict("records")):
        values = {}
        for name, value in row.items():
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                value = float("nan") if i % 3 == 0 else None
            elif feature_registry()[name].dtype in INTEGERS:
                value = int(value)
            else:
                value = float(value) if not isinstance(value, str) else value
            values[name] = value
        out.append(values)
    return out


@pytest.fixture(scope="module")
def model() -> Pipeline:
    params = ModelParameters(max_iter=60, max_leaf_nodes=15, min_samples_leaf=20, n_iter_no_change=60)
    return fit_model({"train": flights(4000, 1), "validate": flights(1000, 2)}, params)


def test_the_model_under_test_splits_on_categories_and_missing_values(model):
    """Else the equality below would not exercise the categorical and missing-value branches."""
    nodes = np.concatenate([tree.nodes for (tree,) in model.named_steps["classify"]._predictors])
    splits = nodes[nodes["is_leaf"] == 0]
    assert splits["is_categorical"].sum() > 10 and (splits["is_categorical"] == 0).sum() > 10
    assert len(set(splits["missing_go_to_left"])) == 2
    assert None in model.named_steps["encode"].named_transformers_["categories"].categories_[0]  # carrier


def test_one_row_at_a_time_equals_batch_scoring_to_the_bit(model):
    frame = flights(3000, 3, unseen=True)
    batch = delay_probability(model, frame)
    rows = records(frame)
    walk = TreeWalk(model)
    assert all(walk.row(values) is not None for values in rows)  # every row took the walk
    scorer = row_scorer(model)
    single = np.array([scorer(values) for values in rows])
    assert single.dtype == batch.dtype and np.array_equal(single, batch), np.abs(single - batch).max()
    assert len(np.unique(single)) > 1000  # many paths through the trees, not a handful
    # the general path on one-row frames (what serving ran before) gives the same floats too
    assert [general_probability(model, values) for values in rows[:40]] == list(batch[:40])  # 20-30 ms each


def test_edge_values_equal_batch_scoring(model):
    base = records(flights(1, 4))[0]
    cases = [
        {"carrier": None}, {"carrier": float("nan")}, {"carrier": "ZZ"}, {"dest": None}, {"dest": ""},
        {"origin": "XXX"}, {"distance_mi": 0}, {"distance_mi": -1}, {"distance_mi": True}, {"distance_mi": 2**53},
        {"temp_f": float("inf")}, {"temp_f": float("-inf")}, {"temp_f": -0.0}, {"temp_f": 1e-300},
        {"plane_seats": None}, {"month": float("nan")},
        dict.fromkeys(model_features()),
    ]
    rows = [{**base, **change} for change in cases]
    walk = TreeWalk(model)
    for values in rows:
        assert walk.row(values) is not None, values
        assert walk.probability(values) == general_probability(model, values), values
    frame = pd.DataFrame([{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                          for r in rows])
    assert [walk.probability(values) for values in rows] == list(delay_probability(model, frame))


def test_values_the_walk_does_not_convert_take_the_general_path(model):
    base = records(flights(1, 5))[0]
    walk = TreeWalk(model)
    for change in ({"distance_mi": np.int64(733)}, {"distance_mi": "733"}, {"temp_f": np.float32(70.5)},
                   {"carrier": 7}, {"distance_mi": 2**60}):
        values = {**base, **change}
        assert walk.row(values) is None, change
        assert row_scorer(model)(values) == general_probability(model, values), change
    with pytest.raises(KeyError):  # a vector without a feature fails as batch scoring's input does
        row_scorer(model)({k: v for k, v in base.items() if k != "month"})


def _one_hot_model() -> Pipeline:
    """A pipeline with a step the walk does not know (one-hot codes)."""
    train = flights(600, 6)
    encoder = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                  categorical_features())], remainder="passthrough")
    model = Pipeline([("encode", encoder), ("classify", HistGradientBoostingClassifier(max_iter=15))])
    return model.fit(model_input(train), train[LABEL].astype(int))


def _three_step_model(model: Pipeline) -> Pipeline:
    """The fitted pipeline with an identity step in between: the same scores, another shape."""
    encoded = model.named_steps["encode"].transform(model_input(flights(10, 7)))
    identity = FunctionTransformer(feature_names_out="one-to-one").set_output(transform="pandas").fit(encoded)
    return Pipeline([("encode", model.named_steps["encode"]), ("identity", identity),
                     ("classify", model.named_steps["classify"])])


@pytest.mark.parametrize("make", [_one_hot_model, _three_step_model], ids=["one-hot-step", "three-steps"])
def test_a_model_of_another_shape_is_scored_the_general_way(model, make):
    other = make(model) if make is _three_step_model else make()
    with pytest.raises(UnsupportedModel):
        TreeWalk(other)
    frame = flights(40, 8, unseen=True)  # one-row frames cost 20-30 ms each
    scorer = row_scorer(other)
    assert scorer.func is general_probability
    assert [scorer(values) for values in records(frame)] == list(delay_probability(other, frame))


def test_the_scorer_is_built_once_per_model(model, monkeypatch):
    built = []
    monkeypatch.setattr(scoring, "_last", None)
    monkeypatch.setattr(scoring, "TreeWalk", lambda m: built.append(m) or TreeWalk(m))
    first = row_scorer(model)
    assert row_scorer(model) is first and built == [model]
