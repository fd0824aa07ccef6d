"""The pretrained_image view: a frozen image encoder the hospital already has on disk, as TorchScript.

Any network exported with ``torch.jit.save`` or ``torch.export.save`` (a RadImageNet, BiomedCLIP or RAD-DINO image tower
traced to take ``(N, C, S, S)`` floats and return pooled ``(N, D)`` features) is used as it is; timm and
open_clip models are exported that way first (docs/pretrained.md), since both packages need torchvision. The
fit copies the file into the pipeline version (so ``label`` needs nothing else), measures its
output size and, optionally, fits the same PCA as the CAE on a training sample. Nothing is trained
and nothing is downloaded. Preprocessing — resize to ``pretrained.image_input_size``, replicate the
grey channel, normalise by the configured mean and standard deviation — runs in the executors,
which load the module once per worker and run it batched under ``torch.inference_mode`` on cuda
when present (float16 autocast there).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from radnet_spark.config import PretrainedConfig, RadnetConfig
from radnet_spark.embedders import PCAProjection, fit_pca, in_fixed_blocks
from radnet_spark.errors import PipelineError
from radnet_spark.sampling import smallest_hash_rows
from radnet_spark.splits import with_split
from radnet_spark.storage import to_local_path
from radnet_spark.training.parquet_loader import decode_images
from radnet_spark.views.base import FittedView, View, ViewInputs

MODEL_FILE = "encoder.pt"
PREPROCESSING_FILE = "preprocessing.json"
PCA_FILE = "pca.npz"
KEY_COLUMNS = ("sop_instance_uid", "exam_id", "split")


class PretrainedImageEncoder:
    """A loaded TorchScript encoder with its preprocessing; :meth:`embed` is pure per batch."""

    def __init__(self, module: Any, preprocessing: dict[str, Any], pca: PCAProjection | None,
                 device: torch.device) -> None:
        self.module, self.preprocessing, self.pca, self.device = module, preprocessing, pca, device

    @classmethod
    def load(cls, folder: str, device: str | None = None) -> PretrainedImageEncoder:
        from radnet_spark.device import pick_device

        root = Path(to_local_path(folder))
        target = pick_device(device)
        module = _load_module(root / MODEL_FILE, target)
        preprocessing = json.loads((root / PREPROCESSING_FILE).read_text(encoding="utf-8"))
        pca = PCAProjection.load(root / PCA_FILE) if (root / PCA_FILE).is_file() else None
        return cls(module, preprocessing, pca, target)

    def _inputs(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (n, s, s) → normalised float (n, C, S, S) on the device."""
        p = self.preprocessing
        size, channels = int(p["input_size"]), int(p["channels"])
        batch = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(self.device)
        batch = batch.float().div_(255.0).unsqueeze(1)
        if batch.shape[-1] != size:
            batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False)
        batch = batch.expand(-1, channels, -1, -1)
        mean = torch.tensor(_per_channel(p["mean"], channels), device=self.device).view(1, channels, 1, 1)
        std = torch.tensor(_per_channel(p["std"], channels), device=self.device).view(1, channels, 1, 1)
        return (batch - mean) / std

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Pooled features of uint8 images (n, s, s): float32 (n, D), PCA-reduced when fitted."""
        def encode(block: np.ndarray) -> np.ndarray:
            with torch.inference_mode(), torch.autocast("cuda", enabled=self.device.type == "cuda"):
                output = self.module(self._inputs(block))
            output = output[0] if isinstance(output, (tuple, list)) else output
            # Feature maps (N, D, h, w) are average-pooled; a (N, D) output is used as it is.
            output = output.float().flatten(2).mean(-1) if output.dim() > 2 else output.float()
            return output.cpu().numpy()

        features = in_fixed_blocks(encode, np.asarray(images), int(self.preprocessing["batch_rows"]))
        features = features.astype(np.float32, copy=False)
        return self.pca.transform(features) if self.pca is not None else features


def _load_module(path: Path, device: torch.device) -> Any:
    """A TorchScript module, or a ``torch.export`` program (torch deprecates TorchScript), on ``device``."""
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError:
        program = torch.export.load(str(path))
        return program.module().to(device)


def _is_weights_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a safetensors file or a ``torch.save``'d mapping of tensors (weights, no architecture)."""
    if path.suffix == ".safetensors":
        return True
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a checkpoint either
        return False
    return isinstance(loaded, dict)


def _reason(error: Exception) -> str:
    """The first 200 characters of what a library said, on one line, without the final full stop."""
    return (" ".join(str(error).split())[:200] or type(error).__name__).rstrip(".")


def _per_channel(values: list[float], channels: int) -> list[float]:
    values = [float(v) for v in values]
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise PipelineError(f"pretrained.image_mean/std need 1 or {channels} values, got {len(values)}.")
    return values


def _preprocessing(p: PretrainedConfig) -> dict[str, Any]:
    return {"input_size": p.image_input_size, "channels": p.image_channels, "mean": list(p.image_mean),
            "std": list(p.image_std), "batch_rows": p.image_batch_rows}


class PretrainedImageView(View):
    """Embeds the ``images`` table with a frozen TorchScript encoder from ``pretrained.image_model``."""

    name = "pretrained_image"
    source_table = "images"
    config_sections = ("pretrained", "split")
    default_k = 40

    def check_settings(self, config: RadnetConfig) -> None:
        """The model file loads and takes a block of the configured shape; else one sentence."""
        model = config.pretrained.image_model
        if not model or not Path(to_local_path(model)).is_file():
            raise PipelineError(
                f"The pretrained_image view needs pretrained.image_model, a TorchScript file on local disk; "
                f"got {model!r}."
            )
        try:
            module = _load_module(Path(to_local_path(model)), torch.device("cpu"))
        except Exception as error:  # noqa: BLE001 - whatever torch says, the file is the user's to fix
            if _is_weights_checkpoint(Path(to_local_path(model))):
                raise PipelineError(
                    f"pretrained.image_model {model!r} holds weights (a checkpoint such as timm or open_clip "
                    f"save), not a model: export it with its architecture to TorchScript or torch.export first, "
                    f"as docs/pretrained.md shows."
                ) from None
            raise PipelineError(
                f"pretrained.image_model {model!r} is neither a TorchScript module (torch.jit.save) nor a "
                f"torch.export program (torch.export.save): {_reason(error)}."
            ) from None
        p = config.pretrained
        # One block of the shape every executor call has: a program exported for another batch size,
        # input size or channel count fails here, in one sentence, instead of in every task.
        try:
            with torch.inference_mode():
                module(torch.zeros(p.image_batch_rows, p.image_channels, p.image_input_size, p.image_input_size))
        except Exception as error:  # noqa: BLE001
            raise PipelineError(
                f"pretrained.image_model {model!r} does not take a batch of shape ({p.image_batch_rows}, "
                f"{p.image_channels}, {p.image_input_size}, {p.image_input_size}) (pretrained.image_batch_rows, "
                f"image_channels, image_input_size; export it with a dynamic batch dimension): {_reason(error)}."
            ) from None

    def fit(self, inputs: ViewInputs, folder: str) -> FittedView:
        p = inputs.config.pretrained
        root = Path(to_local_path(folder))
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(to_local_path(str(p.image_model)), root / MODEL_FILE)
        (root / PREPROCESSING_FILE).write_text(json.dumps(_preprocessing(p), indent=2), encoding="utf-8")
        encoder = PretrainedImageEncoder.load(folder)
        info: dict[str, Any] = {"kind": "torchscript", "source": str(p.image_model)}
        if p.image_pca_components:
            sample = self._training_sample(inputs, p.image_pca_sample_rows)
            encoder.pca = fit_pca(encoder.embed(sample), p.image_pca_components, randomized=True,
                                  seed=inputs.config.split.seed, what="pretrained image features")
            encoder.pca.save(root / PCA_FILE)
            info["pca_explained_variance"] = float(encoder.pca.explained_variance_ratio.sum())
        size = encoder.embed(np.zeros((1, 8, 8), dtype=np.uint8)).shape[1]
        return FittedView(self, folder, int(size), info)

    def _training_sample(self, inputs: ViewInputs, rows: int) -> np.ndarray:
        train = inputs.with_split(inputs.table("images")).where(F.col("split") == "train")
        key = F.col("sop_instance_uid")
        sample = smallest_hash_rows(train, rows, F.xxhash64(F.lit(inputs.config.split.seed), key), [key])
        return decode_images([bytes(row["image"]) for row in sample.select("image").collect()])

    def transform(self, fitted: FittedView, source: DataFrame, config: RadnetConfig) -> DataFrame:
        rows = with_split(source, config.split).select(*KEY_COLUMNS, "image")
        schema = StructType([rows.schema[name] for name in KEY_COLUMNS]
                            + [StructField("embedding", ArrayType(FloatType()), True)])
        directory = str(fitted.folder)  # plain values only: the function is pickled to executors

        def embed_partition(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            from radnet_spark.device import configure_torch_threads
            from radnet_spark.views.pretrained_image import PretrainedImageEncoder
            from radnet_spark.worker_cache import cached

            configure_torch_threads()
            encoder = cached(("pretrained_image", directory), lambda: PretrainedImageEncoder.load(directory))
            for frame in frames:
                present = frame["image"].notna().to_numpy()
                vectors: list[Any] = [None] * len(frame)
                if present.any():
                    matrix = encoder.embed(decode_images(frame["image"][present].tolist()))
                    for position, vector in zip(np.flatnonzero(present), matrix, strict=True):
                        vectors[position] = vector
                out = frame[list(KEY_COLUMNS)].reset_index(drop=True)
                out["embedding"] = pd.Series(vectors, dtype=object)
                yield out

        return rows.mapInPandas(embed_partition, schema)
