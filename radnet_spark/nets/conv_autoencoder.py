"""Convolutional autoencoder for square 8-bit images (RadiologyNET's best image embedder)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class ConvAutoencoder(nn.Module):
    """Encoder: per filter count, conv 3×3 + ReLU + max-pool 2; then a conv 3×3 bottleneck. Mirrored decoder.

    With the defaults (filters 16/32/64/128, 8 bottleneck channels, 128² input) the code is
    8 × 8 × 8 = 512 values. The decoder upsamples with 2×2 transposed convolutions and ends in a
    sigmoid, since inputs are scaled to [0, 1].

    Args:
        filters: Output channels of the encoder's conv layers, in order.
        bottleneck_channels: Channels of the final encoder conv (the code).
        image_size: Side of the square input; must be divisible by 2 ** len(filters).
    """

    def __init__(
        self,
        filters: Sequence[int] = (16, 32, 64, 128),
        bottleneck_channels: int = 8,
        image_size: int = 128,
    ) -> None:
        super().__init__()
        filters = [int(count) for count in filters]
        if not filters or any(count < 1 for count in filters) or bottleneck_channels < 1:
            raise ValueError(
                f"CAE needs at least one positive filter count and a positive bottleneck, got "
                f"filters={filters}, bottleneck_channels={bottleneck_channels}."
            )
        scale = 2 ** len(filters)
        if image_size < scale or image_size % scale:
            raise ValueError(
                f"Image size {image_size} must be a multiple of {scale} for a CAE with "
                f"{len(filters)} pooling layers."
            )
        self.hparams: dict[str, Any] = {
            "filters": filters,
            "bottleneck_channels": int(bottleneck_channels),
            "image_size": int(image_size),
        }
        self.code_side = image_size // scale

        encoder: list[nn.Module] = []
        channels = 1
        for count in filters:
            encoder += [nn.Conv2d(channels, count, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = count
        encoder.append(nn.Conv2d(channels, bottleneck_channels, 3, padding=1))
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = []
        channels = bottleneck_channels
        for count in reversed(filters):
            decoder += [nn.ConvTranspose2d(channels, count, 2, stride=2), nn.ReLU()]
            channels = count
        decoder += [nn.Conv2d(channels, 1, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*decoder)

    @property
    def embedding_size(self) -> int:
        """Length of the flattened code ``encode`` returns."""
        return self.hparams["bottleneck_channels"] * self.code_side * self.code_side

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Map a (batch, 1, S, S) tensor in [0, 1] to its flattened (batch, embedding_size) code."""
        return torch.flatten(self.encoder(images), start_dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruct a (batch, 1, S, S) tensor through the code (what training minimises the MSE of)."""
        return self.decoder(self.encoder(images))
