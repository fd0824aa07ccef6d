"""MissForest and mean/mode imputation of tag values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radnet_spark.errors import UserError
from radnet_spark.tags.missforest import (
    MissForestImputer,
    SimpleTagImputer,
    _change_grew,
    load_imputer,
    make_imputer,
    normalise_tag_frame,
)

CONTINUOUS = ["a", "b", "c"]
CATEGORICAL = ["k"]


def correlated_data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Complete data with strongly related columns, the same as strings with 15% masked, and the mask."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    full = pd.DataFrame({
        "a": a,
        "b": 2 * a + rng.normal(0, 0.2, n),
        "c": -a + rng.normal(0, 0.2, n),
        "k": np.where(a > 0.5, "high", np.where(a < -0.5, "low", "mid")),
    })
    mask = rng.random(full.shape) < 0.15
    masked = full.astype(str).astype(object)
    for j, col in enumerate(full.columns):
        masked.loc[mask[:, j], col] = None
    return full, masked, mask


@pytest.fixture(scope="module")
def fitted():
    full, masked, mask = correlated_data()
    imputer = MissForestImputer(CONTINUOUS, CATEGORICAL, n_estimators=20, seed=0).fit(masked)
    return imputer, full, masked, mask


def test_missforest_beats_mean_and_mode_imputation(fitted):
    imputer, full, masked, mask = fitted
    forest = imputer.transform(masked)
    simple = SimpleTagImputer(CONTINUOUS, CATEGORICAL).fit(masked).transform(masked)
    for j, col in enumerate(CONTINUOUS):
        rows = mask[:, j]
        forest_rmse = np.sqrt(np.mean((forest.loc[rows, col] - full.loc[rows, col]) ** 2))
        simple_rmse = np.sqrt(np.mean((simple.loc[rows, col] - full.loc[rows, col]) ** 2))
        assert forest_rmse < 0.6 * simple_rmse, col
    rows = mask[:, 3]
    forest_accuracy = np.mean(forest.loc[rows, "k"] == full.loc[rows, "k"])
    simple_accuracy = np.mean(simple.loc[rows, "k"] == full.loc[rows, "k"])
    assert forest_accuracy > simple_accuracy + 0.2


def test_observed_values_are_never_changed(fitted):
    imputer, full, masked, mask = fitted
    out = imputer.transform(masked)
    assert not out.isna().any().any()
    for j, col in enumerate(CONTINUOUS):
        np.testing.assert_allclose(out.loc[~mask[:, j], col], full.loc[~mask[:, j], col])
    assert (out.loc[~mask[:, 3], "k"] == full.loc[~mask[:, 3], "k"]).all()


def test_missforest_stops_when_the_change_grows(fitted):
    imputer = fitted[0]
    assert imputer.stopped_early_
    assert imputer.n_iter_ < imputer.max_iter
    last, before = imputer.history_[-1], imputer.history_[-2]
    assert last["continuous"] >= before["continuous"]
    assert last["categorical"] >= before["categorical"]


def test_stopping_rule_needs_every_present_type_to_grow():
    previous = {"continuous": 0.1, "categorical": 0.2}
    assert _change_grew(previous, {"continuous": 0.2, "categorical": 0.3})
    assert not _change_grew(previous, {"continuous": 0.2, "categorical": 0.1})
    assert not _change_grew(previous, {"continuous": 0.05, "categorical": 0.3})
    assert _change_grew({"continuous": 0.1, "categorical": None}, {"continuous": 0.1, "categorical": None})


def test_max_iter_bounds_the_iterations():
    _, masked, _ = correlated_data(n=120)
    imputer = MissForestImputer(CONTINUOUS, CATEGORICAL, n_estimators=5, max_iter=1).fit(masked)
    assert imputer.n_iter_ == 1 and not imputer.stopped_early_


def test_new_batches_with_unseen_categories_and_absent_columns_are_filled(fitted):
    imputer = fitted[0]
    batch = pd.DataFrame({"a": ["1.5", None, "oops"], "k": ["never-seen", None, "low"]})
    out = imputer.transform(batch)
    assert list(out.columns) == CONTINUOUS + CATEGORICAL
    assert not out[CONTINUOUS].isna().any().any()
    assert out.loc[0, "k"] == "never-seen"  # observed values stay, even unknown ones
    assert out.loc[1, "k"] in {"high", "mid", "low"}
    # b is strongly tied to a (b ≈ 2a, mean ≈ 0): a forest, not the mean, fills it.
    assert out.loc[0, "b"] > 0.8


def test_columns_complete_in_the_sample_can_still_be_imputed_later():
    full, masked, _ = correlated_data(n=150)
    masked["a"] = full["a"].astype(str)  # a has no missing value in the sample
    imputer = MissForestImputer(CONTINUOUS, CATEGORICAL, n_estimators=10).fit(masked)
    out = imputer.transform(pd.DataFrame({"a": [None], "b": ["4.0"], "c": ["-2.0"], "k": ["high"]}))
    assert out.loc[0, "a"] > 0.8


def test_simple_imputer_fills_means_and_modes():
    pdf = pd.DataFrame({"a": ["1", "3", None, " "], "k": ["x", "y", "x", None]})
    out = SimpleTagImputer(["a"], ["k"]).fit(pdf).transform(pdf)
    assert out["a"].tolist() == [1.0, 3.0, 2.0, 2.0]
    assert out["k"].tolist() == ["x", "y", "x", "x"]


def test_normalise_turns_blanks_and_text_into_missing():
    out = normalise_tag_frame(pd.DataFrame({"a": ["1.5", "", "x"], "k": [" CT ", "", None]}), ["a", "z"], ["k"])
    assert out["a"].iloc[0] == 1.5 and out["a"].iloc[1:].isna().all()
    assert out["z"].isna().all()
    assert out["k"].tolist() == ["CT", None, None]


@pytest.mark.parametrize("kind", ["missforest", "simple"])
def test_save_then_load_gives_identical_imputations(tmp_path, kind):
    _, masked, _ = correlated_data(n=120, seed=3)
    imputer = make_imputer(kind, CONTINUOUS, CATEGORICAL, **({"n_estimators": 5} if kind == "missforest" else {}))
    imputer.fit(masked)
    imputer.save(tmp_path / "imputer")
    loaded = load_imputer(tmp_path / "imputer")
    assert type(loaded) is type(imputer)
    pd.testing.assert_frame_equal(loaded.transform(masked), imputer.transform(masked))


def test_unknown_imputer_is_a_user_error():
    with pytest.raises(UserError):
        make_imputer("knn", CONTINUOUS, CATEGORICAL)


def test_depth_and_bootstrap_limits_bound_the_forests():
    _, masked, _ = correlated_data(n=200)
    imputer = MissForestImputer(CONTINUOUS, CATEGORICAL, n_estimators=4, max_depth=3, max_samples=50).fit(masked)
    trees = [tree for forest in imputer.forests_.values() for tree in forest.estimators_]
    assert trees and all(tree.get_depth() <= 3 for tree in trees)
    assert set(imputer.forests_) == set(CONTINUOUS + CATEGORICAL)
