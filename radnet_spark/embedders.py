"""Fitted embedders for the tag and image views: fit from Parquet, save, load, embed numpy batches.

``TagEmbedder`` turns ``tag_features.features`` vectors into embeddings with a dense autoencoder
(paper's best: bottleneck 32) or PCA (best: 50 components). ``ImageEmbedder`` turns 8-bit square
images into the flattened code of a convolutional autoencoder, optionally reduced by randomised PCA
(best: 500 components). Both train on a bounded sample streamed from Parquet on one node (GPU when
present); ``embed_numpy`` is pure and is what the Spark inference UDFs call.

A saved embedder is a directory::

    embedder.json   what it is and every setting needed to rebuild it
    weights.pt      the network's state_dict (autoencoders only)
    pca.npz         mean and components of the PCA projection (when PCA is used)
    metrics.json    training history (epoch, train_loss, val_loss), best epoch, rows used
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.errors import PipelineError
from radnet_spark.storage import to_local_path
from radnet_spark.training.parquet_loader import (
    ParquetSource,
    RowFilter,
    decode_features,
    decode_images,
    features_dataset,
    images_dataset,
    make_loader,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "embedder.json"
WEIGHTS_FILE = "weights.pt"
PCA_FILE = "pca.npz"
METRICS_FILE = "metrics.json"

TRAIN_ROWS: dict[str, str] = {"split": "train"}
VALIDATION_ROWS: dict[str, str] = {"split": "validation"}


@dataclass
class PCAProjection:
    """A fitted linear projection ``(x - mean) @ components.T`` (scikit-learn's PCA without whitening)."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    @property
    def n_components(self) -> int:
        """Length of the projected vectors."""
        return int(self.components.shape[0])

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """Project rows of ``matrix`` onto the components (float32); a row's result never depends on its batch.

        One matrix-vector product per row: a matrix product's kernels round a row differently by its
        position in the block (rows 60-63 of a 64-row block differed in the 7th digit from the same
        row alone), a row's own product does not.
        """
        components = np.ascontiguousarray(self.components, dtype=np.float32)
        centred = np.asarray(matrix, dtype=np.float32) - self.mean.astype(np.float32)
        projected = np.empty((len(centred), len(components)), dtype=np.float32)
        for index, row in enumerate(centred):
            projected[index] = components @ row
        return projected

    def save(self, path: Path) -> None:
        """Write mean, components and explained variance to ``path`` (``.npz``)."""
        np.savez(
            path, mean=self.mean, components=self.components,
            explained_variance_ratio=self.explained_variance_ratio,
        )

    @classmethod
    def load(cls, path: Path) -> PCAProjection:
        """Read a projection written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as stored:
            return cls(
                mean=stored["mean"].astype(np.float32),
                components=stored["components"].astype(np.float32),
                explained_variance_ratio=stored["explained_variance_ratio"],
            )


def fit_pca(
    sample: np.ndarray, n_components: int, *, randomized: bool, seed: int, what: str
) -> PCAProjection:
    """Fit PCA on a sample; ask for more components than min(rows, columns) and get that many, with a warning.

    Args:
        sample: Rows to fit on (already bounded by the caller).
        n_components: Components wanted.
        randomized: Use the randomised SVD solver (large samples, many components).
        seed: Seeds the randomised solver.
        what: Names the data in the warning.

    Returns:
        The fitted projection.
    """
    from sklearn.decomposition import PCA

    rows, columns = sample.shape
    if rows < 2:
        raise PipelineError(f"PCA for {what} needs at least 2 training rows, got {rows}.")
    limit = min(rows, columns)
    if n_components > limit:
        log.warning(
            "PCA for %s: %d components requested but only %d rows × %d columns; using %d.",
            what, n_components, rows, columns, limit,
        )
        n_components = limit
    solver = "randomized" if randomized and n_components < limit else "full"
    pca = PCA(n_components=n_components, svd_solver=solver, random_state=seed)
    pca.fit(sample.astype(np.float32))
    return PCAProjection(
        mean=pca.mean_.astype(np.float32),
        components=pca.components_.astype(np.float32),
        explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float64),
    )


def _read_sample(
    path: str, column: str, row_filter: RowFilter, max_rows: int | None, seed: int, decode: Any
) -> np.ndarray:
    # Bounded by max_rows: the only place a matrix of rows is built in memory.
    source = ParquetSource(path, [column], row_filter, max_rows=max_rows, seed=seed, batch_rows=1024)
    parts = [decode(batch.column(column)) for batch in source.iter_batches(epoch=0)]
    if not parts:
        raise PipelineError(f"No rows in {path} match {row_filter!r}; nothing to fit on.")
    return np.concatenate(parts)


def _first_feature_width(path: str, column: str, row_filter: RowFilter) -> int:
    source = ParquetSource(path, [column], row_filter, max_rows=1, shuffle=False)
    for batch in source.iter_batches(epoch=0):
        return int(decode_features(batch.column(column)).shape[1])
    raise PipelineError(f"No rows in {path} match {row_filter!r}; nothing to fit on.")


def in_fixed_blocks(function: Any, rows: np.ndarray, block_rows: int = 64) -> np.ndarray:
    """``function`` applied to ``rows`` in blocks of exactly ``block_rows`` rows (the last one zero-padded).

    BLAS and oneDNN pick kernels by the number of rows (OpenBLAS sgemm below 25 rows, torch for a
    batch of one) and those kernels round differently, so the same row embedded in a batch of 1 and
    of 64 differed in the 8th digit — and with the data's partitioning the embeddings did. A fixed
    block shape makes every row's result independent of how the rows were batched.
    """
    if len(rows) == 0:
        return function(rows)
    outputs = []
    for start in range(0, len(rows), block_rows):
        chunk = rows[start:start + block_rows]
        real = len(chunk)
        if real < block_rows:
            padding = np.zeros((block_rows - real, *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, padding])
        outputs.append(np.asarray(function(chunk))[:real])
    return np.concatenate(outputs)


def _encode_in_batches(encode: Any, inputs: np.ndarray, device: torch.device, batch_rows: int) -> np.ndarray:
    def encode_block(rows: np.ndarray) -> np.ndarray:
        # frombuffer'd images are read-only; torch wants writable memory.
        chunk = torch.from_numpy(np.require(rows, requirements=["C", "W"])).to(device)
        return encode(chunk).to("cpu").numpy()

    with torch.inference_mode():
        return in_fixed_blocks(encode_block, inputs, batch_rows).astype(np.float32, copy=False)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.cpu() for key, value in model.state_dict().items()}


def _read_metrics(folder: Path) -> dict[str, Any]:
    path = folder / METRICS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")


def write_embedder_config(folder: Path, embedder: str, **fields: Any) -> None:
    """Write ``embedder.json``: the step manifest of a saved ``embedder`` (``tags``/``image``) and ``fields``."""
    write_step_manifest(folder, CONFIG_FILE, "embedder", FORMAT_VERSION, embedder=embedder, **fields)


def read_embedder_config(directory: str, expected: str) -> tuple[Path, dict[str, Any]]:
    """Folder and parsed ``embedder.json`` of a saved ``expected`` (``tags``/``image``) embedder.

    Args:
        directory: Folder the embedder was saved to.
        expected: The embedder asked for, ``tags`` or ``image``.

    Returns:
        ``(folder, config)``: the local folder and the manifest's fields.

    Raises:
        PipelineError: No embedder there, another format version, or another kind of embedder.
    """
    folder = Path(to_local_path(directory))
    config = read_step_manifest(folder, CONFIG_FILE, "embedder", FORMAT_VERSION)
    if config.get("embedder") != expected:
        raise PipelineError(
            f"{directory} holds the {config.get('embedder')!r} embedder, "
            f"but the {expected!r} one was asked for."
        )
    return folder, config


class _NetworkEmbedder:
    """What the tag and image embedders share: settings, a network and/or a PCA, training, persistence.

    Subclasses set ``name``, build ``settings`` and implement ``_fit`` (what is learnt),
    ``embedding_size``, ``embed_numpy`` and ``load``.
    """

    name: ClassVar[str]

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.model: Any = None
        self.pca: PCAProjection | None = None
        self.metrics: dict[str, Any] = {}
        self.device = torch.device("cpu")

    @property
    def embedding_size(self) -> int:
        """Length of the vectors ``embed_numpy`` returns (once fitted)."""
        raise NotImplementedError

    def fit(
        self,
        train_path: str,
        validation_path: str | None = None,
        *,
        train_filter: RowFilter = TRAIN_ROWS,
        validation_filter: RowFilter = VALIDATION_ROWS,
        device: str | None = None,
        progress: bool = True,
        num_workers: int = 0,
    ) -> Self:
        """Fit on the training rows of a Parquet table (see the class for what is learnt).

        Args:
            train_path: Parquet table folder with the embedder's column.
            validation_path: Table with the validation rows; None uses ``train_path``.
            train_filter: Training rows, by default ``split == 'train'``; None takes every row.
            validation_filter: Validation rows, by default ``split == 'validation'``.
            device: Training device; None picks cuda when present.
            progress: Show training progress.
            num_workers: DataLoader worker processes reading Parquet.

        Returns:
            self, fitted.
        """
        self._fit(_FitInputs(train_path, validation_path or train_path, train_filter, validation_filter,
                             device, progress, num_workers))
        return self

    def _fit(self, inputs: _FitInputs) -> None:
        raise NotImplementedError

    def _train_network(self, model: torch.nn.Module, train_set: Any, val_set: Any, inputs: _FitInputs) -> None:
        """Train ``model`` with Adam, MSE and early stopping; keep it (in eval mode) and its metrics."""
        from radnet_spark.device import fixed_torch_threads, pick_device
        from radnet_spark.training.trainer import train_autoencoder

        settings = self.settings
        self.device = pick_device(inputs.device)
        with fixed_torch_threads(settings.get("train_threads")):
            result = train_autoencoder(
                model,
                make_loader(train_set, settings["batch_size"], inputs.num_workers),
                make_loader(val_set, settings["batch_size"], inputs.num_workers),
                lr=settings["learning_rate"], max_epochs=settings["max_epochs"], patience=settings["patience"],
                device=self.device, progress=inputs.progress, seed=settings["seed"],
            )
        self.metrics = {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "train_rows": len(train_set),
            "validation_rows": len(val_set),
        }
        self.model = model.eval()

    def _embed_network(self, encode: Any, inputs: np.ndarray, batch_rows: int) -> np.ndarray:
        """``encode`` over ``inputs`` on the embedder's device in fixed-size blocks (float32 rows)."""
        if len(inputs) == 0:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        return _encode_in_batches(encode, inputs, self.device, batch_rows)

    def _save(self, directory: str, **fields: Any) -> Path:
        """Write weights (when there is a network), PCA (when fitted), ``embedder.json`` and metrics."""
        size = self.embedding_size  # raises when not fitted, before anything is written
        folder = Path(to_local_path(directory))
        folder.mkdir(parents=True, exist_ok=True)
        if self.model is not None:
            fields["model"] = self.model.hparams
            torch.save(_cpu_state(self.model), folder / WEIGHTS_FILE)
        if self.pca is not None:
            self.pca.save(folder / PCA_FILE)
        write_embedder_config(folder, self.name, settings=self.settings, embedding_size=size, **fields)
        _write_json(folder / METRICS_FILE, self.metrics)
        return folder

    def _restore(self, folder: Path, model: torch.nn.Module | None, with_pca: bool, device: str | None) -> Self:
        """Fill a new embedder from a saved folder: metrics, the network's weights on ``device``, the PCA."""
        from radnet_spark.device import pick_device

        self.metrics = _read_metrics(folder)
        if model is not None:
            model.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True))
            self.device = pick_device(device)
            self.model = model.to(self.device).eval()
        if with_pca:
            self.pca = PCAProjection.load(folder / PCA_FILE)
        return self


@dataclass(frozen=True)
class _FitInputs:
    """Where an embedder's training rows come from and how it trains (the arguments of ``fit``)."""

    train_path: str
    validation_path: str
    train_filter: RowFilter
    validation_filter: RowFilter
    device: str | None
    progress: bool
    num_workers: int


class TagEmbedder(_NetworkEmbedder):
    """Embeds encoded tag vectors with a dense autoencoder or PCA.

    Args:
        kind: ``"autoencoder"`` or ``"pca"``.
        bottleneck: Autoencoder embedding size.
        hidden: Autoencoder hidden layer sizes, widest first.
        batch_size: Training mini-batch.
        learning_rate: Adam learning rate.
        max_epochs: Autoencoder epoch limit.
        patience: Epochs without validation improvement before stopping.
        pca_components: PCA embedding size (clipped to the sample's rank bound).
        train_sample_rows: Most training rows the autoencoder streams per epoch (None: all).
        validation_sample_rows: Most validation rows per epoch (None: all).
        pca_sample_rows: Rows PCA is fitted on.
        column: The feature column of the table.
        seed: Seeds sampling, shuffling and weight initialisation.
        train_threads: torch threads while training; fixed so the weights do not depend on the
            machine's core count (None: torch's default).
    """

    name = "tags"

    def __init__(
        self,
        kind: str = "autoencoder",
        *,
        bottleneck: int = 32,
        hidden: Sequence[int] = (256, 128),
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        max_epochs: int = 100,
        patience: int = 5,
        pca_components: int = 50,
        train_sample_rows: int | None = None,
        validation_sample_rows: int | None = 5_000,
        pca_sample_rows: int = 20_000,
        column: str = "features",
        seed: int = 42,
        train_threads: int | None = None,
    ) -> None:
        if kind not in ("autoencoder", "pca"):
            raise ValueError(f"Tag embedder kind must be 'autoencoder' or 'pca', got {kind!r}.")
        self.kind = kind
        super().__init__({
            "bottleneck": bottleneck,
            "hidden": list(hidden),
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_epochs": max_epochs,
            "patience": patience,
            "pca_components": pca_components,
            "train_sample_rows": train_sample_rows,
            "validation_sample_rows": validation_sample_rows,
            "pca_sample_rows": pca_sample_rows,
            "column": column,
            "seed": seed,
            "train_threads": train_threads,
        })

    @property
    def embedding_size(self) -> int:
        """Length of the vectors ``embed_numpy`` returns (once fitted)."""
        fitted = self.pca if self.kind == "pca" else self.model
        if fitted is None:
            raise PipelineError("The tag embedder is not fitted yet.")
        return fitted.n_components if self.kind == "pca" else fitted.embedding_size

    def _fit(self, inputs: _FitInputs) -> None:
        """PCA on a bounded sample of training vectors, or the autoencoder trained on the training rows."""
        from radnet_spark.nets.tag_autoencoder import TagAutoencoder

        settings = self.settings
        column, seed = settings["column"], settings["seed"]
        if self.kind == "pca":
            sample = _read_sample(
                inputs.train_path, column, inputs.train_filter, settings["pca_sample_rows"], seed, decode_features
            )
            self.pca = fit_pca(sample, settings["pca_components"], randomized=False, seed=seed, what="tags")
            self.metrics = {
                "train_rows": int(len(sample)),
                "explained_variance": float(self.pca.explained_variance_ratio.sum()),
            }
            return

        torch.manual_seed(seed)
        n_features = _first_feature_width(inputs.train_path, column, inputs.train_filter)
        model = TagAutoencoder(n_features, settings["hidden"], settings["bottleneck"])
        train_set = features_dataset(
            inputs.train_path, column=column, row_filter=inputs.train_filter,
            max_rows=settings["train_sample_rows"], seed=seed,
        )
        val_set = features_dataset(
            inputs.validation_path, column=column, row_filter=inputs.validation_filter,
            max_rows=settings["validation_sample_rows"], seed=seed, shuffle=False,
        )
        self._train_network(model, train_set, val_set, inputs)

    def embed_numpy(self, features: np.ndarray, batch_rows: int = 1024) -> np.ndarray:
        """Embed a (rows, n_features) matrix; returns float32 (rows, embedding_size)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"Tag features must be a 2-D matrix, got shape {features.shape}.")
        if self.kind == "pca":
            if self.pca is None:
                raise PipelineError("The tag embedder is not fitted yet.")
            return self.pca.transform(features)
        if self.model is None:
            raise PipelineError("The tag embedder is not fitted yet.")
        expected = self.model.hparams["n_features"]
        if features.shape[1] != expected:
            raise PipelineError(
                f"Tag features have {features.shape[1]} columns; the embedder was fitted on {expected}."
            )
        return self._embed_network(self.model.encode, features, batch_rows)

    def save(self, directory: str) -> Path:
        """Write config, weights or PCA, and metrics to ``directory`` (created); returns its path."""
        return self._save(directory, kind=self.kind)

    @classmethod
    def load(cls, directory: str, device: str | None = None) -> TagEmbedder:
        """Rebuild a saved tag embedder; the network goes to ``device`` (None: cuda when present)."""
        from radnet_spark.nets.tag_autoencoder import TagAutoencoder

        folder, config = read_embedder_config(directory, cls.name)
        embedder = cls(config["kind"], **config["settings"])
        model = None
        if embedder.kind != "pca":
            hparams = config["model"]
            model = TagAutoencoder(hparams["n_features"], hparams["hidden"], hparams["bottleneck"])
        return embedder._restore(folder, model, embedder.kind == "pca", device)


class ImageEmbedder(_NetworkEmbedder):
    """Embeds square 8-bit images with a convolutional autoencoder, optionally followed by PCA.

    Fitting trains the CAE on an ``images``-like table, then fits PCA on the codes of a training
    sample. The ``images`` table has no split column: either write a training table that has one
    (``radnet_spark.splits``), or pass separate paths and ``None`` filters to ``fit``.

    Args:
        filters: CAE encoder filter counts.
        bottleneck_channels: Channels of the CAE code.
        image_size: Side of the square images.
        batch_size: Training mini-batch.
        learning_rate: Adam learning rate.
        max_epochs: Epoch limit.
        patience: Epochs without validation improvement before stopping.
        train_sample_rows: Most training images streamed per epoch (None: all).
        validation_sample_rows: Most validation images per epoch (None: all).
        pca_components: Randomised PCA of the flattened code to this many components; None keeps the code.
        pca_sample_rows: Images whose codes PCA is fitted on.
        column: The image column of the table.
        seed: Seeds sampling, shuffling and weight initialisation.
        train_threads: torch threads while training; fixed so the weights do not depend on the
            machine's core count (None: torch's default).
    """

    name = "image"

    def __init__(
        self,
        *,
        filters: Sequence[int] = (16, 32, 64, 128),
        bottleneck_channels: int = 8,
        image_size: int = 128,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        max_epochs: int = 40,
        patience: int = 5,
        train_sample_rows: int | None = 50_000,
        validation_sample_rows: int | None = 5_000,
        pca_components: int | None = 500,
        pca_sample_rows: int = 20_000,
        column: str = "image",
        seed: int = 42,
        train_threads: int | None = None,
    ) -> None:
        super().__init__({
            "filters": list(filters),
            "bottleneck_channels": bottleneck_channels,
            "image_size": image_size,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_epochs": max_epochs,
            "patience": patience,
            "train_sample_rows": train_sample_rows,
            "validation_sample_rows": validation_sample_rows,
            "pca_components": pca_components,
            "pca_sample_rows": pca_sample_rows,
            "column": column,
            "seed": seed,
            "train_threads": train_threads,
        })

    @property
    def image_size(self) -> int:
        """Side of the square images the embedder reads."""
        return int(self.settings["image_size"])

    @property
    def embedding_size(self) -> int:
        """Length of the vectors ``embed_numpy`` returns (once fitted)."""
        if self.model is None:
            raise PipelineError("The image embedder is not fitted yet.")
        return self.pca.n_components if self.pca is not None else self.model.embedding_size

    def _fit(self, inputs: _FitInputs) -> None:
        """The CAE trained on the training images, then PCA on the codes of a training sample."""
        from radnet_spark.nets.conv_autoencoder import ConvAutoencoder

        settings = self.settings
        column, seed, size = settings["column"], settings["seed"], self.image_size
        torch.manual_seed(seed)
        model = ConvAutoencoder(settings["filters"], settings["bottleneck_channels"], size)
        train_set = images_dataset(
            inputs.train_path, column=column, image_size=size, row_filter=inputs.train_filter,
            max_rows=settings["train_sample_rows"], seed=seed,
        )
        val_set = images_dataset(
            inputs.validation_path, column=column, image_size=size, row_filter=inputs.validation_filter,
            max_rows=settings["validation_sample_rows"], seed=seed, shuffle=False,
        )
        self._train_network(model, train_set, val_set, inputs)
        self.pca = None
        if settings["pca_components"]:
            images = _read_sample(
                inputs.train_path, column, inputs.train_filter, settings["pca_sample_rows"], seed,
                lambda array: decode_images(array, size),
            )
            codes = self.embed_numpy(images)
            self.pca = fit_pca(
                codes, int(settings["pca_components"]), randomized=True, seed=seed, what="image codes"
            )
            self.metrics["pca_rows"] = int(len(codes))
            self.metrics["pca_explained_variance"] = float(self.pca.explained_variance_ratio.sum())

    def embed_numpy(self, images: np.ndarray, batch_rows: int = 64) -> np.ndarray:
        """Embed images: uint8 (rows, S, S), or float in [0, 1] shaped (rows, S, S) or (rows, 1, S, S).

        Returns:
            float32 (rows, embedding_size).
        """
        if self.model is None:
            raise PipelineError("The image embedder is not fitted yet.")
        images = np.asarray(images)
        size = self.image_size
        if images.ndim == 3:
            images = images[:, None, :, :]
        if images.ndim != 4 or images.shape[1:] != (1, size, size):
            raise PipelineError(f"Images must be {size}×{size}, got an array of shape {images.shape}.")
        scale = np.float32(255.0) if images.dtype == np.uint8 else np.float32(1.0)
        model = self.model

        def encode(chunk: torch.Tensor) -> torch.Tensor:
            return model.encode(chunk.float() / scale)

        codes = self._embed_network(encode, images, batch_rows)
        return self.pca.transform(codes) if self.pca is not None and len(images) else codes

    def embed_bytes(self, images: Sequence[bytes]) -> np.ndarray:
        """Embed images given as the ``images`` table's row-major uint8 bytes."""
        return self.embed_numpy(decode_images(images, self.image_size))

    def save(self, directory: str) -> Path:
        """Write config, weights, PCA and metrics to ``directory`` (created); returns its path."""
        return self._save(directory, kind="cae", pca=self.pca is not None)

    @classmethod
    def load(cls, directory: str, device: str | None = None) -> ImageEmbedder:
        """Rebuild a saved image embedder; the network goes to ``device`` (None: cuda when present)."""
        from radnet_spark.nets.conv_autoencoder import ConvAutoencoder

        folder, config = read_embedder_config(directory, cls.name)
        hparams = config["model"]
        model = ConvAutoencoder(hparams["filters"], hparams["bottleneck_channels"], hparams["image_size"])
        return cls(**config["settings"])._restore(folder, model, bool(config.get("pca")), device)


EMBEDDERS: dict[str, type[TagEmbedder] | type[ImageEmbedder]] = {"tags": TagEmbedder, "image": ImageEmbedder}


def load_embedder(directory: str, kind: str, device: str | None = None) -> TagEmbedder | ImageEmbedder:
    """Load the saved ``kind`` (``"tags"`` or ``"image"``) embedder from ``directory``."""
    if kind not in EMBEDDERS:
        raise ValueError(f"Embedder kind must be one of {', '.join(EMBEDDERS)}, got {kind!r}.")
    return EMBEDDERS[kind].load(directory, device=device)
