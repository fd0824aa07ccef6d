"""Dense autoencoder for encoded DICOM tag vectors (RadiologyNET: three dense layers + ReLU per side)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class TagAutoencoder(nn.Module):
    """in → hidden[0] → hidden[1] → bottleneck, mirrored back to in.

    Every encoder layer is followed by ReLU as in the paper. The decoder mirrors it, except that the
    last layer ends in a sigmoid: tag features are one-hot or min-max scaled, so they lie in [0, 1].

    Args:
        n_features: Length of the input feature vector.
        hidden: Sizes of the hidden layers between input and bottleneck, widest first.
        bottleneck: Size of the embedding (the paper's best: 32).
    """

    def __init__(self, n_features: int, hidden: Sequence[int] = (256, 128), bottleneck: int = 32) -> None:
        super().__init__()
        if n_features < 1 or bottleneck < 1 or any(size < 1 for size in hidden):
            raise ValueError(
                f"Autoencoder sizes must be positive: n_features={n_features}, hidden={list(hidden)}, "
                f"bottleneck={bottleneck}."
            )
        self.hparams: dict[str, Any] = {
            "n_features": int(n_features),
            "hidden": [int(size) for size in hidden],
            "bottleneck": int(bottleneck),
        }
        widths = [n_features, *hidden, bottleneck]
        encoder: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            encoder += [nn.Linear(width_in, width_out), nn.ReLU()]
        decoder: list[nn.Module] = []
        mirrored = widths[::-1]
        for index, (width_in, width_out) in enumerate(zip(mirrored[:-1], mirrored[1:], strict=True)):
            last = index == len(mirrored) - 2
            decoder += [nn.Linear(width_in, width_out), nn.Sigmoid() if last else nn.ReLU()]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    @property
    def embedding_size(self) -> int:
        """Length of the vector ``encode`` returns."""
        return self.hparams["bottleneck"]

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Map a (batch, n_features) tensor to its (batch, bottleneck) embedding."""
        return self.encoder(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Reconstruct a (batch, n_features) tensor through the bottleneck (what training minimises the MSE of)."""
        return self.decoder(self.encoder(features))
