"""Synthetic PACS generator: realistic multi-modality DICOM dumps with diagnoses and known ground truth.

``generate_pacs`` writes ``dicom/`` (a PACS-like folder tree), ``diagnoses.csv`` and
``ground_truth.csv`` for tests, demos and benchmarks.
"""

from radnet_spark.synth.defects import DefectRates
from radnet_spark.synth.writer import GROUND_TRUTH_COLUMNS, SynthSummary, generate_pacs

__all__ = ["DefectRates", "GROUND_TRUTH_COLUMNS", "SynthSummary", "generate_pacs"]
