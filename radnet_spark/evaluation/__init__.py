"""Evaluation: cluster quality proxies, cluster cards, the fusion comparison table and the HTML report."""
