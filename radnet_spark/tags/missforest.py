"""Imputation of missing tag values: MissForest, and a mean/mode fallback with the same interface.

MissForest (Stekhoven & Bühlmann, 2012) fills every missing value with an initial guess (mean for
continuous, mode for categorical columns), then repeatedly visits the columns with missing values in
order of increasing missingness and replaces that column's missing entries with the prediction of a
random forest trained on its observed entries, using all other columns as predictors (regression with
the MSE criterion for continuous, classification with Gini for categorical columns). It stops after
``max_iter`` iterations or as soon as the change between two iterations grows — measured separately for
continuous (normalised squared difference) and categorical columns (share of changed entries) and
stopping when every present type grew — and then keeps the previous iteration's result.

Fitting runs with scikit-learn on a bounded pandas sample on the driver. To impute new rows (every row
of the table, on executors, batch by batch) the forests of the accepted iteration are kept and applied
once in the same column order, after the same initial fill; columns that happened to be complete in
the sample get a forest fitted on the final imputed sample so they can be imputed later too.

Categorical predictors are given to the forests as integer codes (scikit-learn forests have no native
categorical splits); a category never seen during fitting is treated like a missing predictor value.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from radnet_spark.errors import PipelineError, UserError

log = logging.getLogger(__name__)

METADATA_FILE = "imputer.json"
FORESTS_FILE = "forests.joblib"


def normalise_tag_frame(pdf: pd.DataFrame, continuous: list[str], categorical: list[str]) -> pd.DataFrame:
    """Bring tag strings into the imputers' contract.

    Continuous columns become float64 (values that do not parse as numbers become NaN); categorical
    columns become stripped strings of dtype object with None for missing. Blank strings are missing.
    Columns absent from ``pdf`` are added as entirely missing.

    Args:
        pdf: A batch of the ``tags`` table (string columns) or an already normalised frame.
        continuous: Continuous column names.
        categorical: Categorical column names.

    Returns:
        A new frame with exactly ``continuous + categorical`` columns, index reset.
    """
    out: dict[str, Any] = {}
    n = len(pdf)
    for col in continuous:
        if col in pdf.columns:
            values = pdf[col]
            if values.dtype == object:
                values = values.astype("string").str.strip()
            out[col] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        else:
            out[col] = np.full(n, np.nan)
    for col in categorical:
        if col in pdf.columns:
            series = pdf[col].astype("string").str.strip()
            series = series.mask(series == "")
            out[col] = series.astype(object).where(series.notna(), None).to_numpy(dtype=object)
        else:
            out[col] = np.full(n, None, dtype=object)
    return pd.DataFrame(out, columns=list(continuous) + list(categorical))


class TagImputer(Protocol):
    """What features.py needs from an imputer: fit on a sample, fill any batch, persist."""

    continuous: list[str]
    categorical: list[str]

    def fit(self, sample_pdf: pd.DataFrame) -> TagImputer:
        """Learn the fill from a bounded sample of tag rows; returns self."""
        ...

    def transform(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """The batch normalised, with its missing values filled."""
        ...

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the fitted imputer to ``directory``."""
        ...


def _observed_stats(
    frame: pd.DataFrame, continuous: list[str], categorical: list[str]
) -> tuple[dict[str, float], dict[str, str | None], dict[str, list[str]]]:
    means: dict[str, float] = {}
    for col in continuous:
        observed = frame[col].dropna()
        means[col] = float(observed.mean()) if len(observed) else 0.0
    modes: dict[str, str | None] = {}
    levels: dict[str, list[str]] = {}
    for col in categorical:
        counts = frame[col].dropna().value_counts()
        # Ties broken by value so that the mode does not depend on row order.
        ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        modes[col] = str(ordered[0][0]) if ordered else None
        levels[col] = sorted(str(v) for v in counts.index)
    return means, modes, levels


class SimpleTagImputer:
    """Mean (continuous) / mode (categorical) imputation with the MissForest interface.

    Args:
        continuous: Continuous column names.
        categorical: Categorical column names.
    """

    kind = "simple"

    def __init__(self, continuous: list[str], categorical: list[str]) -> None:
        self.continuous = list(continuous)
        self.categorical = list(categorical)
        self.means_: dict[str, float] = {}
        self.modes_: dict[str, str | None] = {}
        self.levels_: dict[str, list[str]] = {}

    def fit(self, sample_pdf: pd.DataFrame) -> SimpleTagImputer:
        """Learn means and modes from the observed values of ``sample_pdf``."""
        frame = normalise_tag_frame(sample_pdf, self.continuous, self.categorical)
        self.means_, self.modes_, self.levels_ = _observed_stats(frame, self.continuous, self.categorical)
        return self

    def transform(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """Return ``pdf`` normalised with every missing value filled by the fitted mean or mode."""
        frame = normalise_tag_frame(pdf, self.continuous, self.categorical)
        for col in self.continuous:
            frame[col] = frame[col].fillna(self.means_[col])
        for col in self.categorical:
            values = frame[col].to_numpy(dtype=object)
            values[pd.isna(values)] = self.modes_[col]
            frame[col] = values
        return frame

    def _metadata(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "continuous": self.continuous, "categorical": self.categorical,
            "means": self.means_, "modes": self.modes_, "levels": self.levels_,
        }

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the fitted imputer to ``directory`` (JSON metadata)."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        (target / METADATA_FILE).write_text(json.dumps(self._metadata(), indent=2), encoding="utf-8")

    @classmethod
    def _from_metadata(cls, meta: dict[str, Any], directory: Path) -> SimpleTagImputer:
        imputer = cls(meta["continuous"], meta["categorical"])
        imputer.means_ = {k: float(v) for k, v in meta["means"].items()}
        imputer.modes_ = dict(meta["modes"])
        imputer.levels_ = {k: list(v) for k, v in meta["levels"].items()}
        return imputer


class MissForestImputer(SimpleTagImputer):
    """MissForest imputation fitted on a pandas sample, applicable to any later batch.

    Args:
        continuous: Continuous column names (imputed by regression forests, MSE).
        categorical: Categorical column names (imputed by classification forests, Gini).
        n_estimators: Trees per forest (paper: 256).
        max_iter: Most MissForest iterations (paper: 10).
        n_jobs: Threads per forest while fitting trees; predictions use one (scikit-learn adds the trees'
            predictions in thread completion order, and executors already run in parallel).
        seed: Random state of the forests.
        max_features: Predictors tried per split; ``"sqrt"`` as in the missForest R package.
        max_depth: Optional depth limit. Fully grown forests are large: on a 20,000-row sample a
            256-tree regression forest takes ≈ 75 MB and a 20-class classification forest up to ≈ 1 GB
            in memory (a third to a tenth of that compressed on disk), per imputed column.
        max_samples: Optional rows (int) or share (float) bootstrapped per tree; bounds time and size.
        min_samples_leaf: None uses the randomForest defaults (5 for regression, 1 for classification).
    """

    kind = "missforest"

    def __init__(
        self,
        continuous: list[str],
        categorical: list[str],
        n_estimators: int = 256,
        max_iter: int = 10,
        n_jobs: int = 2,
        seed: int = 42,
        max_features: str | float | int = "sqrt",
        max_depth: int | None = None,
        min_samples_leaf: int | None = None,
        max_samples: int | float | None = None,
    ) -> None:
        super().__init__(continuous, categorical)
        if n_estimators < 1 or max_iter < 1:
            raise UserError(f"MissForest needs n_estimators >= 1 and max_iter >= 1, got {n_estimators}, {max_iter}.")
        self.n_estimators = n_estimators
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.seed = seed
        self.max_features = max_features
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.forests_: dict[str, Any] = {}
        self.order_: list[str] = []
        self.history_: list[dict[str, float | None]] = []
        self.n_iter_ = 0
        self.stopped_early_ = False

    @property
    def columns(self) -> list[str]:
        """All imputed columns: continuous first, then categorical."""
        return self.continuous + self.categorical

    def _params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators, "max_iter": self.max_iter, "n_jobs": self.n_jobs,
            "seed": self.seed, "max_features": self.max_features, "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf, "max_samples": self.max_samples,
        }

    def _new_forest(self, col: str, rows: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        random_state = self.seed + self.columns.index(col)
        max_samples = self.max_samples
        if isinstance(max_samples, int) and max_samples >= rows:
            max_samples = None  # scikit-learn rejects more bootstrap rows than there are
        if col in self.categorical:
            return RandomForestClassifier(
                n_estimators=self.n_estimators, criterion="gini", max_features=self.max_features,
                max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf or 1,
                n_jobs=self.n_jobs, random_state=random_state, max_samples=max_samples,
            )
        return RandomForestRegressor(
            n_estimators=self.n_estimators, criterion="squared_error", max_features=self.max_features,
            max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf or 5,
            n_jobs=self.n_jobs, random_state=random_state, max_samples=max_samples,
        )

    def _to_matrix(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Numeric matrix (categories as codes, unseen as missing) and its missing mask."""
        matrix = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, col in enumerate(self.continuous):
            matrix[:, j] = frame[col].to_numpy(dtype=np.float64)
        offset = len(self.continuous)
        for j, col in enumerate(self.categorical):
            lookup = {value: float(code) for code, value in enumerate(self.levels_[col])}
            matrix[:, offset + j] = [lookup.get(v, np.nan) if v is not None else np.nan for v in frame[col]]
        return matrix, np.isnan(matrix)

    def _initial_fill(self, matrix: np.ndarray, mask: np.ndarray) -> None:
        for j, col in enumerate(self.columns):
            if col in self.means_:
                fill = self.means_[col]
            else:
                mode = self.modes_[col]
                fill = float(self.levels_[col].index(mode)) if mode is not None else -1.0
            matrix[mask[:, j], j] = fill

    def fit(self, sample_pdf: pd.DataFrame) -> MissForestImputer:
        """Run MissForest on ``sample_pdf`` and keep the forests of the accepted iteration.

        Args:
            sample_pdf: A bounded sample of tag rows (strings or normalised values).

        Returns:
            self, with ``history_`` (per-iteration differences), ``n_iter_`` and ``stopped_early_`` set.
        """
        frame = normalise_tag_frame(sample_pdf, self.continuous, self.categorical)
        if len(frame) == 0:
            raise UserError("MissForest needs at least one sample row to fit; the sample is empty.")
        self.means_, self.modes_, self.levels_ = _observed_stats(frame, self.continuous, self.categorical)
        matrix, mask = self._to_matrix(frame)
        self._initial_fill(matrix, mask)
        missing = mask.sum(axis=0)
        observed = len(frame) - missing
        # Increasing missingness; a column with nothing observed has nothing to learn from.
        order = [j for j in np.argsort(missing, kind="stable") if missing[j] > 0 and observed[j] > 0]
        continuous_idx = [j for j in order if j < len(self.continuous)]
        categorical_idx = [j for j in order if j >= len(self.continuous)]
        missing_categorical = int(sum(missing[j] for j in categorical_idx))

        self.history_ = []
        self.stopped_early_ = False
        accepted: dict[int, Any] = {}
        previous: dict[str, float | None] | None = None
        for _ in range(self.max_iter):
            if not order:
                break
            before = matrix.copy()
            forests: dict[int, Any] = {}
            for j in order:
                forests[j] = self._fit_predict(matrix, mask, j)
            change: dict[str, float | None] = {"continuous": None, "categorical": None}
            if continuous_idx:
                new, old = matrix[:, continuous_idx], before[:, continuous_idx]
                denominator = float(np.sum(new**2))
                change["continuous"] = float(np.sum((new - old) ** 2)) / denominator if denominator else 0.0
            if categorical_idx:
                changed = np.sum(matrix[:, categorical_idx] != before[:, categorical_idx])
                change["categorical"] = float(changed) / missing_categorical
            self.history_.append(change)
            if previous is not None and _change_grew(previous, change):
                # The original criterion: keep the last iteration before the difference grew.
                matrix = before
                self.stopped_early_ = True
                break
            accepted = forests
            previous = change
        self.n_iter_ = len(self.history_)

        self.order_ = [self.columns[j] for j in order]
        self.forests_ = {self.columns[j]: forest for j, forest in accepted.items()}
        # Complete in the sample does not mean complete in the table: learn those columns as well.
        for j, col in enumerate(self.columns):
            if missing[j] == 0 and len(self.columns) > 1:
                forest = self._new_forest(col, len(matrix))
                forest.fit(np.delete(matrix, j, axis=1), matrix[:, j])
                self.forests_[col] = forest
                self.order_.append(col)
        log.info("MissForest: %d iteration(s), stopped early: %s, history: %s",
                 self.n_iter_, self.stopped_early_, self.history_)
        return self

    def _fit_predict(self, matrix: np.ndarray, mask: np.ndarray, j: int) -> Any:
        missing = mask[:, j]
        forest = self._new_forest(self.columns[j], int((~missing).sum()))
        predictors = np.delete(matrix, j, axis=1)
        forest.fit(predictors[~missing], matrix[~missing, j])
        # scikit-learn sums the trees' predictions in the order its threads finish; one thread keeps
        # the imputed sample, and with it the next iteration's forests, the same in every run.
        forest.n_jobs = 1
        matrix[missing, j] = forest.predict(predictors[missing])
        forest.n_jobs = self.n_jobs
        return forest

    def transform(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """Fill the missing values of a batch with the fitted forests.

        Args:
            pdf: Tag rows (strings or normalised values); columns it lacks count as missing.

        Returns:
            The normalised frame (``continuous + categorical`` columns) without missing values,
            except categorical columns never observed while fitting.
        """
        frame = normalise_tag_frame(pdf, self.continuous, self.categorical)
        if len(frame) == 0:
            return frame
        matrix, mask = self._to_matrix(frame)
        # Missing in the output is only what was missing in the input; unseen categories stay as given.
        output_mask = frame.isna().to_numpy()
        if not output_mask.any():
            return frame
        self._initial_fill(matrix, mask)
        for col in self.order_:
            j = self.columns.index(col)
            rows = output_mask[:, j]
            if not rows.any():
                continue
            forest = self.forests_[col]
            forest.n_jobs = 1
            matrix[rows, j] = forest.predict(np.delete(matrix[rows], j, axis=1))
        for j, col in enumerate(self.columns):
            rows = output_mask[:, j]
            if not rows.any():
                continue
            if col in self.means_:
                frame.loc[rows, col] = matrix[rows, j]
            else:
                levels = self.levels_[col]
                values = frame[col].to_numpy(dtype=object)
                values[rows] = [levels[int(code)] if code >= 0 else None for code in matrix[rows, j]]
                frame[col] = values
        return frame

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write JSON metadata and the forests (joblib, compressed) to ``directory``."""
        import joblib

        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        meta = self._metadata()
        meta.update({
            "params": self._params(), "order": self.order_, "history": self.history_,
            "n_iter": self.n_iter_, "stopped_early": self.stopped_early_,
        })
        (target / METADATA_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        joblib.dump(self.forests_, target / FORESTS_FILE, compress=3)

    @classmethod
    def _from_metadata(cls, meta: dict[str, Any], directory: Path) -> MissForestImputer:
        import joblib

        imputer = cls(meta["continuous"], meta["categorical"], **meta["params"])
        imputer.means_ = {k: float(v) for k, v in meta["means"].items()}
        imputer.modes_ = dict(meta["modes"])
        imputer.levels_ = {k: list(v) for k, v in meta["levels"].items()}
        imputer.order_ = list(meta["order"])
        imputer.history_ = list(meta["history"])
        imputer.n_iter_ = int(meta["n_iter"])
        imputer.stopped_early_ = bool(meta["stopped_early"])
        imputer.forests_ = joblib.load(directory / FORESTS_FILE)
        return imputer


def _change_grew(previous: dict[str, float | None], current: dict[str, float | None]) -> bool:
    """True when the change grew for every variable type present (the MissForest stopping rule)."""
    present = [kind for kind in ("continuous", "categorical") if current[kind] is not None]
    return bool(present) and all(current[kind] >= previous[kind] for kind in present)


IMPUTERS: dict[str, type[SimpleTagImputer]] = {"simple": SimpleTagImputer, "missforest": MissForestImputer}


def make_imputer(kind: str, continuous: list[str], categorical: list[str], **params: Any) -> SimpleTagImputer:
    """Create an unfitted imputer by name.

    Args:
        kind: ``"missforest"`` or ``"simple"``.
        continuous: Continuous column names.
        categorical: Categorical column names.
        **params: MissForest parameters (ignored by ``"simple"``).

    Returns:
        The imputer.
    """
    if kind == "simple":
        return SimpleTagImputer(continuous, categorical)
    if kind == "missforest":
        return MissForestImputer(continuous, categorical, **params)
    raise UserError(f"Unknown imputer {kind!r}; choose 'missforest' or 'simple'.")


def load_imputer(directory: str | os.PathLike[str]) -> SimpleTagImputer:
    """Load an imputer saved with ``save(directory)``, whichever kind it is."""
    source = Path(directory)
    meta_path = source / METADATA_FILE
    if not meta_path.is_file():
        raise PipelineError(f"No fitted tag imputer in {source} ({METADATA_FILE} is missing).")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    kind = meta.get("kind")
    if kind not in IMPUTERS:
        raise PipelineError(f"The tag imputer in {source} has unknown kind {kind!r}.")
    return IMPUTERS[kind]._from_metadata(meta, source)

