"""The pretrained_text view: a frozen sentence-transformers encoder of the exam's diagnosis, from local disk.

A hospital that has a sentence encoder for its reports' language (a multilingual MiniLM, a clinical
BERT with a pooling head) points ``pretrained.text_model`` at the model folder that
``SentenceTransformer.save`` wrote. The fit copies that folder into the pipeline version (so ``label``
needs nothing else) and measures the embedding size; nothing is trained and nothing is downloaded
(``HF_HUB_OFFLINE=1`` and ``local_files_only``). Like the diagnosis view it embeds one row per exam of
the ``diagnoses`` table — the scrubbed text ``diagnosis_raw`` by default, so names, dates and ids
never reach the model. Executors load the model once per worker and run it batched under
``torch.inference_mode`` on cuda when present (float16 autocast there).

Batching never changes a vector: a text is padded to a length that depends on its own token count
only (the next power of two from 16, up to the model's maximum), and texts of one length run in
blocks of exactly ``pretrained.text_batch_rows`` rows, so every matrix product has the same shape
whichever rows share the block (see :func:`radnet_spark.embedders.in_fixed_blocks` for why shapes
matter).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from radnet_spark.config import RadnetConfig
from radnet_spark.errors import PipelineError
from radnet_spark.splits import with_split
from radnet_spark.storage import to_local_path
from radnet_spark.tables import table_exists
from radnet_spark.views.base import FittedView, View, ViewInputs

MODEL_DIR = "model"
SETTINGS_FILE = "text_encoder.json"
KEY_COLUMNS = ("exam_id", "split")
SHORTEST_PADDING = 16
LENGTH_ROWS = 256  # texts tokenised at once to measure their lengths
EXTRA = "radnet-spark[sentence-transformers]"


def load_sentence_transformer(folder: str, device: torch.device | str = "cpu") -> Any:
    """A ``SentenceTransformer`` from the model folder ``folder``, local files only, in eval mode.

    Raises:
        PipelineError: sentence-transformers is not installed, or the folder is missing or no model
            sentence-transformers can read (one sentence naming the folder and the library's reason).
    """
    # Before the Hugging Face libraries are imported: they read these once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise PipelineError(
            f"The pretrained_text view needs sentence-transformers; install it with pip install '{EXTRA}'."
        ) from None
    root = Path(to_local_path(folder))
    if not root.is_dir() or not ((root / "modules.json").is_file() or (root / "config.json").is_file()):
        raise PipelineError(
            f"pretrained.text_model must be a sentence-transformers model folder on local disk "
            f"(with modules.json or config.json, as SentenceTransformer.save writes it); got {folder!r}."
        )
    try:
        model = SentenceTransformer(str(root), device=str(device), local_files_only=True, trust_remote_code=False)
    except Exception as error:  # noqa: BLE001 - any reason the library gives is the user's to fix
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise PipelineError(
            f"pretrained.text_model {folder!r} is not a model sentence-transformers can load from local files: "
            f"{reason.rstrip('.')}."
        ) from None
    return model.eval()


def padded_length(tokens: int, longest: int) -> int:
    """The length a text of ``tokens`` tokens is padded to: the next power of two from 16, at most ``longest``."""
    length = max(SHORTEST_PADDING, 1 << max(0, int(tokens) - 1).bit_length())
    return max(1, min(length, longest))


class PretrainedTextEncoder:
    """A loaded sentence-transformers model; :meth:`embed` is pure per list of texts.

    Args:
        model: The ``SentenceTransformer``.
        batch_rows: Texts per model call (every call has exactly this many rows).
        device: Where the model runs.
    """

    def __init__(self, model: Any, batch_rows: int, device: torch.device) -> None:
        self.model, self.batch_rows, self.device = model, int(batch_rows), device
        # The prompt the model's own encode() would prepend (config_sentence_transformers.json), if any.
        default = getattr(model, "default_prompt_name", None)
        self.prompt: str | None = (getattr(model, "prompts", None) or {}).get(default) if default else None

    @classmethod
    def load(cls, folder: str, device: str | None = None) -> PretrainedTextEncoder:
        """The encoder a fit saved in ``folder`` (the copied model and its settings)."""
        from radnet_spark.device import pick_device

        root = Path(to_local_path(folder))
        target = pick_device(device)
        settings = json.loads((root / SETTINGS_FILE).read_text(encoding="utf-8"))
        return cls(load_sentence_transformer(str(root / MODEL_DIR), target), settings["batch_rows"], target)

    @property
    def longest(self) -> int:
        """The most tokens a text keeps (the model's ``max_seq_length``; 512 when it names none)."""
        return int(getattr(self.model, "max_seq_length", None) or 512)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, D) sentence embeddings of ``texts``, the same for a text whatever else is in the call."""
        texts = [str(text) for text in texts]
        if not texts:
            return np.zeros((0, self.dimension()), dtype=np.float32)
        lengths = self._token_counts(texts)
        if lengths is None:  # an input module without an attention mask: one text per call
            return np.concatenate([self._forward([text], None) for text in texts])
        padded = np.array([padded_length(n, self.longest) for n in lengths])
        positions, blocks = [], []
        for length in np.unique(padded):
            rows = np.flatnonzero(padded == length)
            for start in range(0, len(rows), self.batch_rows):
                chunk = rows[start:start + self.batch_rows]
                block = [texts[i] for i in chunk]
                # Filled up with copies of its last text: a block always has batch_rows rows.
                block += [block[-1]] * (self.batch_rows - len(block))
                positions.append(chunk)
                blocks.append(self._forward(block, int(length))[:len(chunk)])
        out = np.empty((len(texts), blocks[0].shape[1]), dtype=np.float32)
        out[np.concatenate(positions)] = np.concatenate(blocks)
        return out

    def dimension(self) -> int:
        """Length of every embedding."""
        return int(self._forward(["x"], None).shape[1])

    def _token_counts(self, texts: list[str]) -> list[int] | None:
        counts: list[int] = []
        for start in range(0, len(texts), LENGTH_ROWS):
            features = self.model.preprocess(texts[start:start + LENGTH_ROWS], prompt=self.prompt)
            mask = features.get("attention_mask")
            if not isinstance(mask, torch.Tensor):
                return None
            counts += mask.sum(dim=1).tolist()
        return counts

    def _forward(self, texts: list[str], length: int | None) -> np.ndarray:
        """One model call; ``length`` pads (and truncates) every text to exactly that many tokens."""
        kwargs = {} if length is None else {
            "processing_kwargs": {"text": {"padding": "max_length", "max_length": length, "truncation": True}}
        }
        features = self.model.preprocess(texts, prompt=self.prompt, **kwargs)
        mask = features.get("attention_mask")
        if length is not None and isinstance(mask, torch.Tensor) and mask.shape[1] != length:
            raise PipelineError(
                f"sentence-transformers padded to {mask.shape[1]} tokens instead of {length}; "
                f"install the version {EXTRA} pins."
            )
        features = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        with torch.inference_mode(), torch.autocast("cuda", enabled=self.device.type == "cuda"):
            output = self.model(features)["sentence_embedding"]
        return output.float().cpu().numpy().astype(np.float32, copy=False)


class PretrainedTextView(View):
    """Embeds the diagnosis text of the ``diagnoses`` table with ``pretrained.text_model``; one row per exam."""

    name = "pretrained_text"
    key = "exam_id"
    source_table = "diagnoses"
    config_sections = ("pretrained", "split")
    default_k = 20

    def usable_rows(self, inputs: ViewInputs) -> tuple[int, str]:
        """Training diagnoses with text (the model folder was checked by :meth:`check_settings` before)."""
        p = inputs.config.pretrained
        what = f"training diagnoses with text in {p.text_column}"
        if not table_exists(inputs.warehouse, self.source_table):
            return 0, what
        train = inputs.with_split(inputs.table(self.source_table)).where(F.col("split") == "train")
        return train.where(F.length(F.trim(F.col(p.text_column))) > 0).count(), what

    def check_settings(self, config: RadnetConfig) -> None:
        """The model folder loads; else one sentence."""
        if not config.pretrained.text_model:
            raise PipelineError(
                "The pretrained_text view needs pretrained.text_model, a sentence-transformers model folder "
                "on local disk; got None."
            )
        load_sentence_transformer(config.pretrained.text_model)  # missing, malformed or unloadable: one sentence

    def fit(self, inputs: ViewInputs, folder: str) -> FittedView:
        from importlib.metadata import version

        p = inputs.config.pretrained
        root = Path(to_local_path(folder))
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(to_local_path(str(p.text_model)), root / MODEL_DIR, dirs_exist_ok=True)
        settings = {"batch_rows": p.text_batch_rows, "text_column": p.text_column}
        (root / SETTINGS_FILE).write_text(json.dumps(settings, indent=2), encoding="utf-8")
        encoder = PretrainedTextEncoder.load(folder, device="cpu")
        info = {"kind": "sentence_transformers", "source": str(p.text_model), "text_column": p.text_column,
                "max_seq_length": encoder.longest, "sentence_transformers": version("sentence-transformers")}
        return FittedView(self, folder, encoder.dimension(), info)

    def transform(self, fitted: FittedView, source: DataFrame, config: RadnetConfig) -> DataFrame:
        column = str(fitted.info.get("text_column", config.pretrained.text_column))
        rows = with_split(source, config.split).select(*KEY_COLUMNS, F.col(column).alias("text"))
        schema = StructType([rows.schema[name] for name in KEY_COLUMNS]
                            + [StructField("embedding", ArrayType(FloatType()), True)])
        directory = str(fitted.folder)  # plain values only: the function is pickled to executors

        def embed_partition(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            from radnet_spark.device import configure_torch_threads
            from radnet_spark.views.pretrained_text import PretrainedTextEncoder, embed_frame
            from radnet_spark.worker_cache import cached

            configure_torch_threads()
            encoder = cached(("pretrained_text", directory), lambda: PretrainedTextEncoder.load(directory))
            for frame in frames:
                yield embed_frame(encoder, frame)

        return rows.mapInPandas(embed_partition, schema)


def embed_frame(encoder: PretrainedTextEncoder, frame: pd.DataFrame) -> pd.DataFrame:
    """The key columns of ``frame`` and the embedding of its ``text`` (null where the text is null or blank)."""
    texts = frame["text"]
    present = (texts.notna() & (texts.fillna("").astype(str).str.strip() != "")).to_numpy()
    vectors: list[Any] = [None] * len(frame)
    if present.any():
        matrix = encoder.embed(texts[present].astype(str).tolist())
        for position, vector in zip(np.flatnonzero(present), matrix, strict=True):
            vectors[position] = vector
    out = frame[list(KEY_COLUMNS)].reset_index(drop=True)
    out["embedding"] = pd.Series(vectors, dtype=object)
    return out
