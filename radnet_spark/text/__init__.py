"""Narrative diagnoses: cleaning, stemming, vocabulary and text embeddings."""
