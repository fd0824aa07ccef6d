"""Driver-side training: Parquet → torch streaming and the autoencoder training loop."""
