from pathlib import Path

import pytest
import yaml

from radnet_spark.config import ConfigError, load_config, write_effective_config


def test_defaults_are_the_papers_values():
    config = load_config()
    assert config.tags.min_fill_rate == 0.2
    assert config.tags.max_categories == 50
    assert config.tags.missforest_trees == 256
    assert config.tags.ae_bottleneck == 32
    assert config.tags.pca_components == 50
    assert config.ingest.image_size == 128
    assert config.ingest.min_max_value == 64
    assert config.image.max_epochs == 40
    assert config.image.pca_components == 500
    assert config.text.min_word_frequency == 5
    assert config.cluster.view_k == {"tags": 25, "image": 40, "diagnosis": 20}
    assert (config.split.train, config.split.validation, config.split.test) == (0.8, 0.1, 0.1)


def test_yaml_then_cli_overrides_apply_in_order(tmp_path: Path):
    config_file = tmp_path / "radnet.yaml"
    config_file.write_text(yaml.safe_dump({"ingest": {"image_size": 64, "min_max_value": 32}}))
    config = load_config(config_file, ["ingest.image_size=256", "cluster.views=tags,image"])
    assert config.ingest.image_size == 256
    assert config.ingest.min_max_value == 32
    assert config.cluster.views == ["tags", "image"]


def test_unknown_setting_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="Unknown setting config.ingest.imagesize"):
        load_config(None, ["ingest.imagesize=3"])


def test_wrong_type_is_a_clear_error():
    with pytest.raises(ConfigError, match="ingest.image_size must be int"):
        load_config(None, ["ingest.image_size=big"])


def test_missing_config_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_effective_config_round_trips(tmp_path: Path):
    config = load_config(None, ["tags.embedder=pca"])
    written = write_effective_config(config, tmp_path, "features")
    again = load_config(written)
    assert again == config
