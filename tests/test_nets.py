"""The torch modules, the training loop and device choice — no Spark."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_shapes import _one_torch_thread, shape_images  # noqa: F401 - autouse fixture
from torch.utils.data import DataLoader, TensorDataset

from radnet_spark.device import configure_torch_threads, pick_device
from radnet_spark.nets import ConvAutoencoder, TagAutoencoder
from radnet_spark.training.trainer import evaluate_loss, train_autoencoder


def low_rank_features(count: int, width: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.uniform(0, 1, (count, 3))
    mixing = rng.uniform(0, 1, (3, width)) / 3
    return np.clip(latent @ mixing, 0, 1).astype(np.float32)


def loader(array: np.ndarray, batch_size: int = 16, shuffle: bool = False) -> DataLoader:
    return DataLoader(TensorDataset(torch.from_numpy(array)), batch_size=batch_size, shuffle=shuffle)


def test_tag_autoencoder_embeds_to_the_bottleneck_size_and_reconstructs_the_input_shape():
    model = TagAutoencoder(40, hidden=(16, 8), bottleneck=5)
    batch = torch.rand(7, 40)
    assert model.encode(batch).shape == (7, 5)
    assert model(batch).shape == (7, 40)
    assert model.embedding_size == 5


def test_tag_autoencoder_has_three_dense_layers_with_relu_in_the_encoder():
    model = TagAutoencoder(40, hidden=(16, 8), bottleneck=5)
    kinds = [type(layer).__name__ for layer in model.encoder]
    assert kinds == ["Linear", "ReLU"] * 3


def test_tag_autoencoder_training_lowers_the_loss():
    features = low_rank_features(256)
    model = TagAutoencoder(features.shape[1], hidden=(16, 8), bottleneck=4)
    result = train_autoencoder(
        model, loader(features, shuffle=True), loader(features[:64]),
        lr=1e-2, max_epochs=15, patience=5, device="cpu", progress=False,
    )
    assert result.history[result.best_epoch - 1]["val_loss"] < result.history[0]["val_loss"] * 0.7


def test_conv_autoencoder_default_code_is_8x8x8_for_128_pixel_images():
    model = ConvAutoencoder()
    images = torch.rand(2, 1, 128, 128)
    assert model.encode(images).shape == (2, 512)
    assert model(images).shape == (2, 1, 128, 128)
    assert model.embedding_size == 512


def test_conv_autoencoder_rejects_a_size_the_pooling_cannot_halve():
    with pytest.raises(ValueError, match="multiple of 16"):
        ConvAutoencoder(image_size=40)


def test_conv_autoencoder_output_stays_in_unit_range():
    model = ConvAutoencoder(filters=(4, 4), bottleneck_channels=2, image_size=16)
    with torch.inference_mode():
        output = model(torch.rand(3, 1, 16, 16))
    assert float(output.min()) >= 0.0 and float(output.max()) <= 1.0


def test_conv_autoencoder_reconstruction_loss_falls_on_shape_images():
    images, _ = shape_images(128)
    inputs = (images.astype(np.float32) / 255)[:, None]
    model = ConvAutoencoder(filters=(8, 8, 16, 16), bottleneck_channels=8, image_size=32)
    torch.manual_seed(0)
    before = evaluate_loss(model, loader(inputs[:32]), torch.device("cpu"))
    train_autoencoder(
        model, loader(inputs, shuffle=True), loader(inputs[:32]),
        lr=3e-3, max_epochs=8, patience=3, device="cpu", progress=False,
    )
    after = evaluate_loss(model, loader(inputs[:32]), torch.device("cpu"))
    assert after < before * 0.6


def test_training_stops_after_patience_epochs_without_validation_improvement():
    features = low_rank_features(64)
    model = TagAutoencoder(features.shape[1], hidden=(8, 8), bottleneck=2)
    # A zero learning rate never improves the validation loss after the first epoch.
    result = train_autoencoder(
        model, loader(features), loader(features), lr=0.0, max_epochs=50, patience=3,
        device="cpu", progress=False,
    )
    assert result.best_epoch == 1
    assert len(result.history) == 4
    assert result.stopped_early


def test_training_leaves_the_model_holding_the_best_epochs_weights():
    features = low_rank_features(64)
    model = TagAutoencoder(features.shape[1], hidden=(8, 8), bottleneck=2)
    result = train_autoencoder(
        model, loader(features), loader(features), lr=0.05, max_epochs=6, patience=2,
        device="cpu", progress=False,
    )
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, result.best_state[name])
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss"}


def test_training_with_the_same_seed_repeats_the_same_losses():
    features = low_rank_features(64)

    def run() -> list[dict[str, float]]:
        torch.manual_seed(3)
        model = TagAutoencoder(features.shape[1], hidden=(8, 8), bottleneck=2)
        return train_autoencoder(
            model, loader(features, shuffle=True), loader(features), lr=1e-2, max_epochs=3, patience=3,
            device="cpu", progress=False, seed=7,
        ).history

    assert run() == run()


def test_device_is_cpu_on_this_machine(monkeypatch):
    monkeypatch.delenv("RADNET_DEVICE", raising=False)
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not torch.cuda.is_available() and pick_device().type == "cpu"


def test_device_follows_the_environment_override(monkeypatch):
    monkeypatch.setenv("RADNET_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    monkeypatch.setenv("RADNET_DEVICE", "toaster")
    with pytest.raises(ValueError, match="not a torch device"):
        pick_device()


def test_cuda_request_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        pick_device("cuda")


def test_torch_uses_one_thread_per_task_core_by_default(monkeypatch):
    monkeypatch.delenv("RADNET_TORCH_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        assert configure_torch_threads() == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("RADNET_TORCH_THREADS", "2")
        assert configure_torch_threads() == 2
    finally:
        torch.set_num_threads(before)
