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


# -- pretrained_text: a sentence-transformers folder the test builds itself (random weights) ------------------

WORDS = ("pluća", "srce", "bez", "znakova", "prijeloma", "uredan", "nalaz", "lijevo", "desno", "prsni", "koš",
         "koljeno", "kralježnica", "no", "evidence", "of", "fracture", "normal", "chest", "left", "right", "knee")
TINY_TEXT_SETTINGS = [
    "tags.missforest_trees=8", "tags.missforest_max_iter=2", "tags.embedder=pca",
    "cluster.k_min=2", "cluster.k_max=4", "cluster.min_view_rows=3", "cluster.views=[tags,pretrained_text]",
    "pretrained.text_batch_rows=4",
]


def save_tiny_sentence_model(folder):
    """A 2-layer, 16-wide BERT with mean pooling, random weights, saved with SentenceTransformer.save."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    letters = "abcdefghijklmnopqrstuvwxyzčćđšž"
    vocab = folder / "vocab.txt"
    folder.mkdir(parents=True)
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), *letters,
                                *(f"##{c}" for c in letters)]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, strip_accents=False)
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=32, max_position_embeddings=128))
    transformer_dir = folder / "transformer"
    bert.save_pretrained(transformer_dir)
    tokenizer.save_pretrained(transformer_dir)
    transformer = Transformer(str(transformer_dir), max_seq_length=96)
    model = SentenceTransformer(modules=[transformer, Pooling(16, "mean")], device="cpu")
    model.save(str(folder / "st"))
    return folder / "st", model


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    return save_tiny_sentence_model(tmp_path_factory.mktemp("text-model") / "built")


def _fitted_text_folder(model_dir, target, batch_rows):
    import shutil

    from radnet_spark.views.pretrained_text import MODEL_DIR, SETTINGS_FILE

    shutil.copytree(model_dir, target / MODEL_DIR)
    (target / SETTINGS_FILE).write_text(json.dumps({"batch_rows": batch_rows, "text_column": "diagnosis_raw"}))
    return str(target)


def _texts(count, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(1, 60))) for _ in range(count)]


def test_text_embeddings_do_not_depend_on_batching_and_match_sentence_transformers(text_model, tmp_path):
    from radnet_spark.views.pretrained_text import PretrainedTextEncoder, padded_length

    model_dir, original = text_model
    encoder = PretrainedTextEncoder.load(_fitted_text_folder(model_dir, tmp_path, 4), device="cpu")
    texts = _texts(23, seed=3)
    together = encoder.embed(texts)
    assert together.shape == (23, 16) and together.dtype == np.float32
    one_by_one = np.concatenate([encoder.embed([text]) for text in texts])
    order = np.random.default_rng(4).permutation(len(texts))
    shuffled = encoder.embed([texts[i] for i in order])[np.argsort(order)]
    np.testing.assert_array_equal(one_by_one, together)
    np.testing.assert_array_equal(shuffled, together)
    # The same vectors sentence-transformers' own encode gives, up to float rounding of the padding.
    np.testing.assert_allclose(together, original.encode(texts, convert_to_numpy=True), atol=1e-5)
    assert not np.allclose(together[0], together[1])
    assert encoder.embed([]).shape == (0, 16)
    assert [padded_length(n, 96) for n in (1, 16, 17, 33, 95, 300)] == [16, 16, 32, 64, 96, 96]


def test_a_missing_or_malformed_text_model_folder_is_one_sentence(tmp_path, text_model):
    from radnet_spark.views.pretrained_text import load_sentence_transformer

    empty, garbled, weightless = tmp_path / "empty", tmp_path / "garbled", tmp_path / "weightless"
    empty.mkdir()
    garbled.mkdir()
    (garbled / "modules.json").write_text("{not json")
    weightless.mkdir()
    for name in ("modules.json", "config.json", "sentence_bert_config.json"):
        (weightless / name).write_bytes((text_model[0] / name).read_bytes())
    cases = {tmp_path / "nowhere": "must be a sentence-transformers model folder",
             empty: "must be a sentence-transformers model folder",
             garbled: "is not a model sentence-transformers can load",
             weightless: "is not a model sentence-transformers can load"}
    for folder, message in cases.items():
        with pytest.raises(PipelineError, match=message) as caught:
            load_sentence_transformer(str(folder))
        text = str(caught.value)
        assert "\n" not in text and text.count(". ") == 0 and text.endswith("."), text


@pytest.fixture(scope="module")
def text_pipeline(spark, tmp_path_factory, text_model):
    """A small dump run to the report with the tags and pretrained_text views, from a copy of the model."""
    import shutil

    root = tmp_path_factory.mktemp("text-pipeline")
    generate_pacs(root / "pacs", exams=10, seed=23, defect_rates=DefectRates.none(), workers=1)
    model_copy = root / "st-model"
    shutil.copytree(text_model[0], model_copy)
    settings = [*TINY_TEXT_SETTINGS, f"pretrained.text_model={model_copy}"]
    warehouse, models = str(root / "warehouse"), str(root / "models")
    result = run(spark, str(root / "pacs" / "dicom"), str(root / "pacs" / "diagnoses.csv"), warehouse,
                 load_config(None, settings), models_root=models)
    return {"root": root, "warehouse": warehouse, "models": models, "result": result, "settings": settings,
            "model_copy": model_copy}


def test_a_pipeline_embeds_clusters_and_labels_with_the_pretrained_text_view(spark, text_pipeline):
    import shutil

    from radnet_spark.pipeline import label
    from radnet_spark.views.pretrained_text import MODEL_DIR

    warehouse, result = text_pipeline["warehouse"], text_pipeline["result"]
    assert result.pipeline.manifest()["views"] == ["tags", "pretrained_text"]
    assert (result.pipeline.root / "pretrained_text" / "embedder" / MODEL_DIR / "modules.json").is_file()
    embeddings = read_table(spark, warehouse, "embeddings_pretrained_text")
    diagnoses = read_table(spark, warehouse, "diagnoses")
    assert embeddings.count() == diagnoses.count() >= 8
    assert {len(row["embedding"]) for row in embeddings.select("embedding").collect()} == {16}
    labels = read_table(spark, warehouse, "labels")
    assert labels.count() == read_table(spark, warehouse, "tags").count()

    # label needs only the pipeline version: the folder the model came from is gone.
    shutil.rmtree(text_pipeline["model_copy"])
    new = text_pipeline["root"] / "new-pacs"
    generate_pacs(new, exams=3, seed=29, defect_rates=DefectRates.none(), workers=1)
    labelled = label(spark, str(result.pipeline.root), str(new / "dicom"), str(new / "diagnoses.csv"), warehouse)
    assert labelled.new_labels > 0


def test_text_embeddings_are_identical_across_partitionings_and_runs(spark, text_pipeline):
    from radnet_spark.views.pretrained_text import PretrainedTextView

    warehouse, result = text_pipeline["warehouse"], text_pipeline["result"]
    config = load_config(None, text_pipeline["settings"])
    fitted = PretrainedTextView().load(str(result.pipeline.root / "pretrained_text" / "embedder"))
    diagnoses = read_table(spark, warehouse, "diagnoses")

    def vectors(frame):
        return {row["exam_id"]: list(row["embedding"]) for row in fitted.transform(frame, config).collect()}

    written = {row["exam_id"]: list(row["embedding"])
               for row in read_table(spark, warehouse, "embeddings_pretrained_text").collect()}
    one, three = vectors(diagnoses.repartition(1)), vectors(diagnoses.repartition(3))
    assert one == three
    assert {exam: one[exam] for exam in written} == written


def test_a_bad_text_model_or_image_kind_exits_2_with_one_sentence(text_pipeline, tmp_path, capsys):
    from radnet_spark.cli import main

    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "modules.json").write_text("[{]")
    base = ["run", "--out", text_pipeline["warehouse"], "--models", str(tmp_path / "models")]
    for model, message in ((tmp_path / "nowhere", "must be a sentence-transformers model folder"),
                           (garbled, "is not a model sentence-transformers can load")):
        settings = [*TINY_TEXT_SETTINGS, f"pretrained.text_model={model}"]
        code = main([*base, *(part for setting in settings for part in ("--set", setting))])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
        assert not (tmp_path / "models" / "default").exists() or not any(
            (version / "pretrained_text").exists() for version in (tmp_path / "models" / "default").iterdir())

    code = main([*base, "--set", "pretrained.image_kind=timm"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "timm requires torchvision" in err[0] and "docs/pretrained.md" in err[0]


def test_a_malformed_image_model_file_is_one_sentence(tmp_path):
    from radnet_spark.views.pretrained_image import PretrainedImageView

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    # torch.export fixes the batch size unless told otherwise: the view's blocks have image_batch_rows rows.
    static = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(TinyEncoder().eval(), (torch.zeros(1, 3, 32, 32),)), str(static))
    weights = tmp_path / "weights.pth"  # what timm and open_clip checkpoints are: tensors without the network
    torch.save(TinyEncoder().state_dict(), str(weights))
    for model, message in ((broken, "is neither a TorchScript module"), (static, "does not take a batch of shape"),
                           (weights, "holds weights .* not a model: export it")):
        config = load_config(None, [f"pretrained.image_model={model}", "pretrained.image_input_size=32"])
        with pytest.raises(PipelineError, match=message) as caught:
            PretrainedImageView().check_settings(config)
        assert "\n" not in str(caught.value)


def test_timm_and_open_clip_kinds_are_refused_at_load_with_the_export_route():
    from radnet_spark.config import ConfigError

    for kind, package in (("timm", "timm"), ("open_clip", "open_clip_torch")):
        with pytest.raises(ConfigError, match=f"{package} requires torchvision.*docs/pretrained.md") as caught:
            load_config(None, [f"pretrained.image_kind={kind}"])
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="pretrained.image_kind must be exported"):
        load_config(None, ["pretrained.image_kind=onnx"])
    assert load_config(None, ["pretrained.image_kind=exported"]).pretrained.image_kind == "exported"


def test_the_documented_exports_a_traced_module_and_a_dynamic_batch_program_embed_alike(tmp_path):
    """docs/pretrained.md exports timm/open_clip towers with torch.jit.trace or a dynamic-batch torch.export."""
    torch.manual_seed(5)
    tower, example = TinyEncoder().eval(), torch.zeros(2, 3, 32, 32)
    traced, exported = tmp_path / "traced", tmp_path / "exported"
    for folder in (traced, exported):
        folder.mkdir()
        (folder / PREPROCESSING_FILE).write_text(json.dumps(
            {"input_size": 32, "channels": 3, "mean": [0.5], "std": [0.25], "batch_rows": 8}))
    torch.jit.save(torch.jit.trace(tower, example), str(traced / MODEL_FILE))
    batch = torch.export.Dim("batch")
    program = torch.export.export(tower, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(exported / MODEL_FILE))
    images = np.random.default_rng(2).integers(0, 256, (11, 64, 64), dtype=np.uint8)
    from_trace = PretrainedImageEncoder.load(str(traced), device="cpu").embed(images)
    from_export = PretrainedImageEncoder.load(str(exported), device="cpu").embed(images)
    assert from_trace.shape == from_export.shape == (11, 6)
    np.testing.assert_allclose(from_trace, from_export, rtol=1e-5, atol=1e-6)


def test_a_model_with_a_default_prompt_gets_it_as_its_own_encode_does(text_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    from radnet_spark.views.pretrained_text import PretrainedTextEncoder

    prompted = SentenceTransformer(str(text_model[0]), device="cpu", local_files_only=True,
                                   prompts={"document": "nalaz: "}, default_prompt_name="document")
    prompted.save(str(tmp_path / "prompted"))
    encoder = PretrainedTextEncoder.load(_fitted_text_folder(tmp_path / "prompted", tmp_path / "fitted", 4), "cpu")
    texts = _texts(6, seed=8)
    assert encoder.prompt == "nalaz: "
    np.testing.assert_allclose(encoder.embed(texts), prompted.encode(texts, convert_to_numpy=True), atol=1e-5)
    assert not np.allclose(encoder.embed(texts), text_model[1].encode(texts, convert_to_numpy=True), atol=1e-5)


def test_a_missing_model_stops_run_before_anything_is_ingested(tmp_path, capsys):
    import shutil

    from pydicom.data import get_testdata_file

    from radnet_spark.cli import main

    dump = tmp_path / "dump"
    dump.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm", download=False), dump / "ct.dcm")
    warehouse = tmp_path / "warehouse"
    code = main(["run", "--dicom", str(dump), "--out", str(warehouse), "--models", str(tmp_path / "models"),
                 "--set", "cluster.views=[tags,pretrained_image]",
                 "--set", f"pretrained.image_model={tmp_path / 'nowhere.pt'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pretrained.image_model" in err[0], err
    assert not (warehouse / "_runs").exists() or not any((warehouse / "_runs").iterdir())
    assert not (warehouse / "files").exists()
