"""The one per-worker model cache and the fitted steps' manifests (no Spark)."""

from __future__ import annotations

import json

import pytest

from radnet_spark import worker_cache
from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.errors import PipelineError


def test_a_model_is_loaded_once_and_the_least_recently_used_leaves_first():
    worker_cache.clear()
    loads: list[str] = []

    def loader(name: str):  # noqa: ANN202
        return lambda: loads.append(name) or name

    assert worker_cache.cached("a", loader("a")) == "a"
    assert worker_cache.cached("a", loader("a")) == "a"
    assert loads == ["a"]
    for name in "bcd":
        worker_cache.cached(name, loader(name))
    worker_cache.cached("a", loader("a"))  # a is now the most recent
    worker_cache.cached("e", loader("e"))  # over the bound: b, the least recent, leaves
    worker_cache.cached("b", loader("b"))
    assert loads == ["a", "b", "c", "d", "e", "b"]
    worker_cache.clear()


def test_a_step_manifest_refuses_another_step_or_format_in_one_sentence(tmp_path):
    write_step_manifest(tmp_path, "step.json", "fusion", 1, views=["tags"])
    assert read_step_manifest(tmp_path, "step.json", "fusion", 1)["views"] == ["tags"]
    with pytest.raises(PipelineError, match="holds the 'fusion' step, not 'clusterer'"):
        read_step_manifest(tmp_path, "step.json", "clusterer", 1)
    with pytest.raises(PipelineError, match="fusion format 1; this radnet-spark reads format 2"):
        read_step_manifest(tmp_path, "step.json", "fusion", 2)
    with pytest.raises(PipelineError, match="holds no fitted fusion"):
        read_step_manifest(tmp_path / "nowhere", "step.json", "fusion", 1)
    (tmp_path / "torn.json").write_text('{"step": "fus', encoding="utf-8")
    with pytest.raises(PipelineError, match="missing or unreadable"):
        read_step_manifest(tmp_path, "torn.json", "fusion", 1)
    assert json.loads((tmp_path / "step.json").read_text())["format_version"] == 1
