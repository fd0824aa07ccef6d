"""Autoencoder training loop: Adam, MSE, early stopping on validation loss, best weights restored."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What a training run produced.

    Attributes:
        best_state: ``state_dict`` of the epoch with the lowest validation loss (tensors on cpu).
        history: One dict per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss``.
        best_epoch: Epoch whose weights ``best_state`` holds.
        stopped_early: True when patience ran out before ``max_epochs``.
    """

    best_state: dict[str, torch.Tensor]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def _set_epoch(loader: Iterable[torch.Tensor], epoch: int) -> None:
    # Our Parquet datasets reshuffle per epoch; worker copies only learn the epoch this way.
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)


def _inputs(batch: torch.Tensor | tuple | list) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _total(loader: Iterable[torch.Tensor]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def evaluate_loss(model: nn.Module, loader: Iterable[torch.Tensor], device: torch.device) -> float:
    """Mean per-element MSE of ``model`` reconstructing every batch of ``loader``."""
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in loader:
            inputs = _inputs(batch).to(device, non_blocking=True)
            loss = nn.functional.mse_loss(model(inputs), inputs, reduction="sum")
            total += float(loss)
            count += inputs.numel()
    return total / count if count else math.nan


def train_autoencoder(
    model: nn.Module,
    train_loader: Iterable[torch.Tensor],
    val_loader: Iterable[torch.Tensor] | None,
    *,
    lr: float = 1e-3,
    max_epochs: int = 100,
    patience: int = 5,
    device: torch.device | str | None = None,
    progress: bool = True,
    seed: int = 0,
) -> TrainingResult:
    """Train an autoencoder to reconstruct its input; stop after ``patience`` epochs without improvement.

    Args:
        model: Maps a batch to a reconstruction of the same shape. Left holding the best weights.
        train_loader: Yields input batches (or tuples whose first item is the input).
        val_loader: Held-out batches that decide early stopping; None falls back to the training loss.
        lr: Adam learning rate.
        max_epochs: Upper bound on epochs.
        patience: Epochs without a lower validation loss before stopping.
        device: Where to train; None picks with ``radnet_spark.device.pick_device``.
        progress: Show a tqdm bar with the epoch and losses.
        seed: Seeds torch so a run is repeatable.

    Returns:
        The best weights, per-epoch losses, best epoch and whether training stopped early.
    """
    from radnet_spark.device import pick_device

    if max_epochs < 1 or patience < 1:
        raise ValueError(f"max_epochs and patience must be positive, got {max_epochs} and {patience}.")
    torch.manual_seed(seed)
    device = pick_device(None if device is None else str(device))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    best_loss = math.inf
    result = TrainingResult(best_state=_cpu_state(model))
    since_best = 0
    epochs = tqdm(range(1, max_epochs + 1), desc="epochs", unit="epoch", disable=not progress)
    for epoch in epochs:
        _set_epoch(train_loader, epoch)
        model.train()
        total, count = 0.0, 0
        batches = tqdm(
            train_loader, desc=f"epoch {epoch}", unit="batch", leave=False,
            total=_total(train_loader), disable=not progress,
        )
        for batch in batches:
            inputs = _inputs(batch).to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(model(inputs), inputs)
            loss.backward()
            optimizer.step()
            total += loss.item() * inputs.numel()
            count += inputs.numel()
        if count == 0:
            raise ValueError("The training loader yielded no rows; check the table path and filter.")
        train_loss = total / count
        if val_loader is not None:
            _set_epoch(val_loader, epoch)
            val_loss = evaluate_loss(model, val_loader, device)
            if math.isnan(val_loss):
                raise ValueError("The validation loader yielded no rows; check its table path and filter.")
        else:
            val_loss = train_loss
        result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        epochs.set_postfix(train_loss=f"{train_loss:.5f}", val_loss=f"{val_loss:.5f}")
        log.info("epoch %d: train loss %.6f, validation loss %.6f", epoch, train_loss, val_loss)
        if val_loss < best_loss:
            best_loss = val_loss
            result.best_epoch = epoch
            result.best_state = _cpu_state(model)
            since_best = 0
        else:
            since_best += 1
            if since_best >= patience:
                result.stopped_early = epoch < max_epochs
                break
    epochs.close()
    model.load_state_dict(result.best_state)
    return result


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
