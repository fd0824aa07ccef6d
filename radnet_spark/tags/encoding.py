"""Imputed tag values → one fixed-length float vector per instance.

Continuous columns are min-max scaled to [0, 1] with the training sample's range (values outside it are
clipped; a constant column encodes as 0); categorical columns are one-hot encoded over the categories
seen while fitting (an unseen or missing category encodes as all zeros, never an error). The vector is
the continuous columns in order, then each categorical column's one-hot block.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radnet_spark.errors import PipelineError

FORMAT = "radnet-tag-encoder"
VERSION = 1


class TagEncoder:
    """One-hot / min-max encoder fitted on the training sample.

    Args:
        continuous: Continuous column names.
        categorical: Categorical column names.
    """

    def __init__(self, continuous: list[str], categorical: list[str]) -> None:
        self.continuous = list(continuous)
        self.categorical = list(categorical)
        self.minimum_: dict[str, float] = {}
        self.maximum_: dict[str, float] = {}
        self.categories_: dict[str, list[str]] = {}

    def fit(self, pdf: pd.DataFrame, categories: dict[str, list[str]] | None = None) -> TagEncoder:
        """Learn ranges and categories.

        Args:
            pdf: Imputed training rows.
            categories: Optional fixed category lists per column (e.g. top values + ``__other__``);
                columns not given use the sorted values observed in ``pdf``.

        Returns:
            self.
        """
        categories = categories or {}
        for col in self.continuous:
            values = pd.to_numeric(pdf[col], errors="coerce").to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            self.minimum_[col] = float(finite.min()) if finite.size else 0.0
            self.maximum_[col] = float(finite.max()) if finite.size else 0.0
        for col in self.categorical:
            if col in categories:
                self.categories_[col] = [str(v) for v in categories[col]]
            else:
                observed = pdf[col].dropna()
                self.categories_[col] = sorted({str(v) for v in observed})
        return self

    @property
    def feature_names(self) -> list[str]:
        """One name per output position: the column, or ``column=category`` for one-hot entries."""
        names = list(self.continuous)
        for col in self.categorical:
            names += [f"{col}={value}" for value in self.categories_[col]]
        return names

    @property
    def n_features(self) -> int:
        """Length of the encoded vector."""
        return len(self.continuous) + sum(len(self.categories_[col]) for col in self.categorical)

    def encode_frame(self, pdf: pd.DataFrame) -> np.ndarray:
        """Encode a batch of imputed rows.

        Args:
            pdf: Rows with (at least) the encoder's columns; a missing column encodes as 0 / all zeros.

        Returns:
            A float32 array of shape ``(len(pdf), n_features)`` with values in [0, 1].
        """
        n = len(pdf)
        out = np.zeros((n, self.n_features), dtype=np.float32)
        position = 0
        for col in self.continuous:
            if col in pdf.columns:
                values = pd.to_numeric(pdf[col], errors="coerce").to_numpy(dtype=np.float64)
                low, span = self.minimum_[col], self.maximum_[col] - self.minimum_[col]
                if span > 0:
                    scaled = np.clip((values - low) / span, 0.0, 1.0)
                    out[:, position] = np.nan_to_num(scaled, nan=0.0)
            position += 1
        for col in self.categorical:
            levels = self.categories_[col]
            if col in pdf.columns and levels:
                lookup = {value: index for index, value in enumerate(levels)}
                codes = np.array(
                    [-1 if _is_missing(v) else lookup.get(str(v), -1) for v in pdf[col]],
                    dtype=np.int64,
                )
                rows = np.nonzero(codes >= 0)[0]
                out[rows, position + codes[rows]] = 1.0
            position += len(levels)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The fitted state as plain JSON-able data."""
        return {
            "format": FORMAT, "version": VERSION, "continuous": self.continuous,
            "categorical": self.categorical, "minimum": self.minimum_, "maximum": self.maximum_,
            "categories": self.categories_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TagEncoder:
        """Rebuild an encoder from :meth:`to_dict` output."""
        if data.get("format") != FORMAT:
            raise PipelineError("The tag encoder file is not a radnet tag encoder.")
        encoder = cls(data["continuous"], data["categorical"])
        encoder.minimum_ = {k: float(v) for k, v in data["minimum"].items()}
        encoder.maximum_ = {k: float(v) for k, v in data["maximum"].items()}
        encoder.categories_ = {k: list(v) for k, v in data["categories"].items()}
        return encoder

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the encoder as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TagEncoder:
        """Read an encoder saved with :meth:`save`."""
        source = Path(path)
        if not source.is_file():
            raise PipelineError(f"No fitted tag encoder at {source}.")
        return cls.from_dict(json.loads(source.read_text(encoding="utf-8")))


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
