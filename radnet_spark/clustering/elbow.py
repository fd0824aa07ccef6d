"""Choose k by the elbow of the within-cluster sum of squares, located with Kneedle (``kneed``).

The sweep fits the ``sample`` engine (scikit-learn) once per k on ONE bounded sample, so every k
sees the same rows and the curve is comparable across k.

Fallback when Kneedle finds no knee (a straight or too-short curve): the k whose point lies
farthest below the chord joining the first and last points of the curve, normalised to [0, 1] in
both axes — Kneedle's difference curve without its sensitivity threshold. When every point lies on
the chord, the smallest k is chosen. ``ElbowResult.knee_found`` says which rule decided.

Beside the WCSS, every k gets two label-free scores on the same sample (bounded to
``SCORE_SAMPLE_ROWS`` rows): the silhouette (higher is better) and the Calinski-Harabasz index.
They do not choose k (the paper's rule does), but the runner-up — the best-silhouette k other than
the chosen one — and both curves are kept, so a reader can see whether the elbow is defensible.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from sklearn.metrics import calinski_harabasz_score, silhouette_score

from radnet_spark.clustering.kmeans import check_distance, fit_matrix, sample_matrix
from radnet_spark.vectors import l2_normalise

# Silhouette costs O(n²): the label-free scores use at most this many of the sampled rows.
SCORE_SAMPLE_ROWS = 5_000


@dataclass
class ElbowResult:
    """A k sweep: the ks tried, their WCSS, and the chosen k."""

    ks: list[int]
    wcss: list[float]
    chosen_k: int
    knee_found: bool = True
    silhouette: list[float] = field(default_factory=list)
    calinski_harabasz: list[float] = field(default_factory=list)

    @property
    def rule(self) -> str:
        """Which rule chose k: Kneedle's knee, or the farthest point below the chord."""
        return "kneedle" if self.knee_found else "chord fallback"

    @property
    def runner_up(self) -> int | None:
        """The k with the best silhouette other than the chosen one (None without scores)."""
        ranked = sorted((s, k) for k, s in zip(self.ks, self.silhouette, strict=False) if k != self.chosen_k)
        return ranked[-1][1] if ranked else None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready lists and numbers (what ``save`` writes)."""
        return {
            "ks": list(self.ks),
            "wcss": list(self.wcss),
            "chosen_k": self.chosen_k,
            "knee_found": self.knee_found,
            "rule": self.rule,
            "runner_up": self.runner_up,
            "silhouette": list(self.silhouette),
            "calinski_harabasz": list(self.calinski_harabasz),
        }

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON to ``path`` (parent folders created) and return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> ElbowResult:
        """Read a result written by :meth:`save`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            ks=[int(k) for k in data["ks"]],
            wcss=[float(w) for w in data["wcss"]],
            chosen_k=int(data["chosen_k"]),
            knee_found=bool(data.get("knee_found", True)),
            silhouette=[float(v) for v in data.get("silhouette", [])],
            calinski_harabasz=[float(v) for v in data.get("calinski_harabasz", [])],
        )


def k_range(k_min: int, k_max: int, k_step: int = 1) -> list[int]:
    """The ks of a sweep, inclusive of ``k_max`` when the step lands on it."""
    if k_min < 1 or k_max < k_min or k_step < 1:
        raise ValueError(f"k range {k_min}..{k_max} step {k_step} is empty or invalid.")
    return list(range(k_min, k_max + 1, k_step))


def choose_k(ks: list[int], wcss: list[float]) -> tuple[int, bool]:
    """The elbow of a decreasing convex WCSS curve.

    Args:
        ks: increasing ks.
        wcss: WCSS per k.

    Returns:
        ``(k, knee_found)``: Kneedle's knee, or the fallback (see module docstring) with False.
    """
    if len(ks) != len(wcss) or not ks:
        raise ValueError("ks and wcss must be non-empty and of equal length.")
    if len(ks) >= 3:
        from kneed import KneeLocator

        knee = KneeLocator(ks, wcss, curve="convex", direction="decreasing").knee
        if knee is not None:
            return int(knee), True
    x = np.asarray(ks, dtype=float)
    y = np.asarray(wcss, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return int(ks[0]), False
    xn = (x - x.min()) / np.ptp(x)
    yn = (y - y.min()) / np.ptp(y)
    chord = 1.0 - xn  # the straight line from (0, 1) to (1, 0)
    below = chord - yn
    if below.max() <= 1e-9:  # on the chord up to rounding: no bend at all
        return int(ks[0]), False
    return int(ks[int(below.argmax())]), False


def elbow_from_matrix(
    x: np.ndarray,
    ks: list[int],
    *,
    distance: str = "euclidean",
    max_iter: int = 20,
    seed: int = 42,
    n_init: int = 1,
    backend: str = "sklearn",
) -> ElbowResult:
    """Fit k-means for every k on the same local matrix and locate the elbow.

    Args:
        x: ``(n, d)`` rows.
        ks: ks to try (ks above ``n`` are skipped).
        distance: ``euclidean`` or ``cosine`` (cosine: rows L2-normalised, WCSS on the sphere).
        max_iter: iterations per fit.
        seed: seed for every fit.
        n_init: restarts per k.
        backend: ``sklearn`` or ``faiss``.

    Returns:
        The :class:`ElbowResult`.
    """
    check_distance(distance)
    x = np.asarray(x, dtype=np.float32)
    if distance == "cosine":
        x = l2_normalise(x).astype(np.float32)
    tried, wcss, silhouette, calinski = [], [], [], []
    scored = x[np.random.default_rng(seed).permutation(len(x))[:SCORE_SAMPLE_ROWS]] if len(x) else x
    for k in sorted(set(int(k) for k in ks)):
        if k > len(x):
            continue
        # Already normalised, so fit with Euclidean: WCSS on the sphere is what the elbow needs.
        model = fit_matrix(
            x, k, distance="euclidean", max_iter=max_iter, seed=seed, n_init=n_init, backend=backend
        )
        tried.append(k)
        wcss.append(float(model.info["inertia"]))
        labels = model.predict(scored)
        separable = 1 < len(set(labels.tolist())) < len(scored)
        silhouette.append(float(silhouette_score(scored, labels)) if separable else float("nan"))
        calinski.append(float(calinski_harabasz_score(scored, labels)) if separable else float("nan"))
    if not tried:
        raise ValueError(f"No k in {ks} is at most the {len(x)} sampled rows.")
    chosen, found = choose_k(tried, wcss)
    return ElbowResult(ks=tried, wcss=wcss, chosen_k=chosen, knee_found=found, silhouette=silhouette,
                       calinski_harabasz=calinski)


def elbow_sweep(
    df: DataFrame,
    ks: list[int],
    *,
    features_col: str = "features",
    distance: str = "euclidean",
    fit_sample_rows: int = 50_000,
    max_iter: int = 20,
    seed: int = 42,
    n_init: int = 1,
    backend: str = "sklearn",
) -> ElbowResult:
    """Sample at most ``fit_sample_rows`` vectors once, then run :func:`elbow_from_matrix` on them.

    Args:
        df: Rows with a vector column; filter to the training split before calling.
        ks: The k values to fit.
        features_col: Vector column.
        distance: ``euclidean`` or ``cosine``.
        fit_sample_rows: Most rows brought to the driver.
        max_iter: Lloyd iterations per k.
        seed: Seed of the sample and of every fit.
        n_init: Restarts per k.
        backend: ``sklearn`` or ``faiss``.

    Returns:
        WCSS (and the other criteria) per k with the chosen k.
    """
    x = sample_matrix(df, features_col, fit_sample_rows, seed)
    return elbow_from_matrix(
        x, ks, distance=distance, max_iter=max_iter, seed=seed, n_init=n_init, backend=backend
    )


def plot_elbow(result: ElbowResult, ax: Any | None = None) -> Any:
    """Draw WCSS against k with the chosen k marked; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    ax.plot(result.ks, result.wcss, marker="o", color="#1f77b4")
    ax.axvline(
        result.chosen_k,
        color="#d62728",
        linestyle="--",
        label=f"k = {result.chosen_k}" + ("" if result.knee_found else " (fallback)"),
    )
    ax.set_xlabel("k")
    ax.set_ylabel("within-cluster sum of squares")
    ax.set_title("Elbow" + (f" (silhouette's best other k: {result.runner_up})" if result.runner_up else ""))
    ax.legend(loc="upper right")
    if result.silhouette:
        twin = ax.twinx()
        twin.plot(result.ks, result.silhouette, marker=".", color="#2ca02c", label="silhouette")
        twin.set_ylabel("silhouette (sample)", color="#2ca02c")
    fig.tight_layout()
    return fig


def elbow_png(result: ElbowResult) -> bytes:
    """The elbow plot as PNG bytes."""
    import matplotlib.pyplot as plt

    fig = plot_elbow(result)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
