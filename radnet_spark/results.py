"""What ``run`` and ``label`` return: the facts a user reads at the end of a command."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radnet_spark.artifacts import PipelineDir


@dataclass
class RunResult:
    """The version ``run`` trained, its k and headline metrics, and which stages ran or were complete."""

    pipeline: PipelineDir
    report: Path | None
    k: int
    metrics: dict[str, Any]
    stages_run: list[str] = field(default_factory=list)
    stages_skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"pipeline {self.pipeline.root}",
            f"  stages run: {', '.join(self.stages_run) or 'none'}; skipped (complete): "
            f"{', '.join(self.stages_skipped) or 'none'}",
            f"  k = {self.k}",
        ]
        for split in ("validation", "test"):
            m = self.metrics.get(split) or {}
            if m:
                lines.append(
                    f"  {split:<10} score {m.get('score', 0):.3f}  HS/NMI modality "
                    f"{m.get('hs_modality', 0):.3f}/{m.get('nmi_modality', 0):.3f}  HS/NMI bpe "
                    f"{m.get('hs_bpe', 0):.3f}/{m.get('nmi_bpe', 0):.3f}"
                )
        if self.report is not None:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


@dataclass
class LabelResult:
    """What one ``label`` run added: new labels, per-cluster drift, and warnings.

    ``share_train`` is the cluster's share of the training dump; ``distance_train`` the mean
    distance of its held-out instances (validation and test splits; of all its rows when it held
    none out), None where there are none.
    """

    pipeline_version: str
    new_labels: int
    drift: list[dict[str, Any]]
    warnings: list[str]

    def __str__(self) -> str:
        def distance(value: float | None, width: int) -> str:
            return f"{value:>{width}.3f}" if value is not None else f"{'-':>{width}}"

        lines = [f"labelled {self.new_labels} new instances with pipeline {self.pipeline_version}"]
        if self.drift:
            lines.append("  cluster  share(new)  share(training dump)  mean dist(new)  mean dist(held-out)")
            for row in self.drift:
                lines.append(
                    f"  {row['cluster']:>7}  {row['share_new']:>10.3f}  {row['share_train']:>20.3f}  "
                    f"{distance(row['distance_new'], 14)}  {distance(row['distance_train'], 19)}"
                )
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)
