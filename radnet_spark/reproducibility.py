"""What, beside the input files and the config, decides a run's labels (kept in the manifest)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from radnet_spark.config import RadnetConfig
from radnet_spark.dicom.deid import resolve_salt, salted_hash
from radnet_spark.storage import to_local_path


def reproducibility_record(config: RadnetConfig, warehouse: str) -> dict[str, Any]:
    """What, beside the input files and the config, decides a run's labels (kept in the manifest).

    The salt decides the hashed exam ids, hence the exam-level split: two runs give the same labels
    only with the same salt (the same ``RADNET_SALT`` or the same warehouse). Only a keyed digest of
    the salt is recorded, never the salt.
    """
    salt = resolve_salt(config.privacy.salt_env, Path(to_local_path(warehouse)) / "_private" / "salt")
    return {
        "salt_fingerprint": salted_hash("radnet-salt-fingerprint", salt)[:16],
        "salt_from": config.privacy.salt_env if os.environ.get(config.privacy.salt_env) else "warehouse _private/salt",
        "seeds": {"split": config.split.seed, "text": config.text.seed, "cluster": config.cluster.seed},
        "train_threads": {"tags": config.tags.ae_train_threads, "image": config.image.train_threads},
        "torch": torch.__version__,
        "training_device": "cuda" if torch.cuda.is_available() else "cpu",
        "mkl": {name: os.environ.get(name) for name in ("MKL_CBWR", "MKL_DYNAMIC")},
    }
