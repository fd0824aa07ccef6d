"""A frozen TorchScript image encoder from local disk as a view (no download, no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from radnet_spark.config import load_config
from radnet_spark.errors import PipelineError
from radnet_spark.pipeline import run
from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tables import read_table
from radnet_spark.views.pretrained_image import MODEL_FILE, PREPROCESSING_FILE, PretrainedImageEncoder


class TinyEncoder(torch.nn.Module):
    """Stands in for a hospital's exported encoder: 3-channel 32² input → 6 pooled features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3 or x.shape[-1] != 32:
            raise ValueError("expected (N, 3, 32, 32)")
        return torch.relu(self.conv(x))  # feature maps: the view pools them


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("encoder") / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyEncoder().eval()), str(path))
    return path


def test_images_are_resized_replicated_normalised_and_pooled_whatever_the_batch(encoder_file, tmp_path):
    (tmp_path / MODEL_FILE).write_bytes(encoder_file.read_bytes())
    (tmp_path / PREPROCESSING_FILE).write_text(json.dumps(
        {"input_size": 32, "channels": 3, "mean": [0.5], "std": [0.25], "batch_rows": 8}))
    encoder = PretrainedImageEncoder.load(str(tmp_path), device="cpu")
    images = np.random.default_rng(1).integers(0, 256, (19, 128, 128), dtype=np.uint8)
    together = encoder.embed(images)
    assert together.shape == (19, 6) and together.dtype == np.float32
    one_by_one = np.concatenate([encoder.embed(images[i:i + 1]) for i in range(19)])
    np.testing.assert_array_equal(one_by_one, together)
    bright, dark = encoder.embed(np.full((1, 128, 128), 255, np.uint8)), encoder.embed(np.zeros((1, 128, 128), np.uint8))
    assert not np.allclose(bright, dark)


def test_a_pipeline_embeds_and_clusters_with_the_pretrained_view(spark, tmp_path, encoder_file):
    dump = tmp_path / "pacs"
    generate_pacs(dump, exams=8, seed=17, defect_rates=DefectRates.none(), workers=1)
    settings = [
        "tags.missforest_trees=8", "tags.missforest_max_iter=2", "tags.embedder=pca",
        "cluster.k_min=2", "cluster.k_max=5", "cluster.views=[tags,pretrained_image]",
        f"pretrained.image_model={encoder_file}", "pretrained.image_input_size=32", "pretrained.image_std=[0.25]",
    ]
    warehouse, models = str(tmp_path / "warehouse"), str(tmp_path / "models")
    result = run(spark, str(dump / "dicom"), None, warehouse, load_config(None, settings), models_root=models,
                 until="cluster")
    assert (result.pipeline.root / "pretrained_image" / "embedder" / MODEL_FILE).is_file()
    embeddings = read_table(spark, warehouse, "embeddings_pretrained_image")
    assert embeddings.count() == read_table(spark, warehouse, "images").count()
    assert {len(row["embedding"]) for row in embeddings.select("embedding").collect()} == {6}
    assert result.pipeline.manifest()["views"] == ["tags", "pretrained_image"]

    missing = [*settings[:-3], "pretrained.image_model=/nowhere/encoder.pt"]
    with pytest.raises(PipelineError, match="needs pretrained.image_model, a TorchScript file"):
        run(spark, None, None, warehouse, load_config(None, missing), models_root=models)


def test_a_torch_export_program_loads_as_well(tmp_path):
    from radnet_spark.views.pretrained_image import _load_module

    model = TinyEncoder().eval()
    example = torch.zeros(2, 3, 32, 32)
    path = tmp_path / "encoder.pt2"
    torch.export.save(torch.export.export(model, (example,)), str(path))
    loaded = _load_module(path, torch.device("cpu"))
    torch.testing.assert_close(loaded(example), model(example))
