"""Torch modules for the tag and image embedders; no I/O, no Spark."""

from radnet_spark.nets.conv_autoencoder import ConvAutoencoder
from radnet_spark.nets.tag_autoencoder import TagAutoencoder

__all__ = ["ConvAutoencoder", "TagAutoencoder"]
