"""Where torch runs, and how many threads it may use inside a Spark task."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

log = logging.getLogger(__name__)

DEVICE_ENV = "RADNET_DEVICE"
THREADS_ENV = "RADNET_TORCH_THREADS"


def pick_device(preferred: str | None = None) -> torch.device:
    """Choose the torch device: an explicit choice, then ``RADNET_DEVICE``, then cuda when present, else cpu.

    Args:
        preferred: A device string such as ``"cpu"`` or ``"cuda:0"``; None defers to the environment.

    Returns:
        The device to run models on.

    Raises:
        ValueError: The requested device is not a torch device, or asks for cuda on a machine without it.
    """
    requested = preferred or os.environ.get(DEVICE_ENV) or ""
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(
            f"Device {requested!r} (from {DEVICE_ENV} or the caller) is not a torch device."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {requested!r} was requested but torch sees no CUDA device on this machine.")
    return device


def task_cpus() -> int:
    """CPU cores Spark granted the current task (``spark.task.cpus``); 1 outside a Spark task."""
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
    except ImportError:
        return 1
    if context is None:
        return 1
    try:
        return max(1, int(context.cpus()))
    except (AttributeError, TypeError, ValueError):
        return 1


def configure_torch_threads(num_threads: int | None = None) -> int:
    """Limit torch's intra-op threads so Spark's task slots do not oversubscribe the cores.

    Spark already runs one task per core; a torch pool per task sized to the whole machine would
    make every task fight for every core. The order of precedence is ``num_threads``, then
    ``RADNET_TORCH_THREADS``, then the cores Spark granted the current task (1 by default).

    Args:
        num_threads: Threads to use; None picks as described above.

    Returns:
        The number of threads torch now uses.
    """
    if num_threads is None:
        from_env = os.environ.get(THREADS_ENV)
        num_threads = int(from_env) if from_env else task_cpus()
    num_threads = max(1, int(num_threads))
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    return num_threads


@contextmanager
def fixed_torch_threads(num_threads: int | None) -> Iterator[int]:
    """Run a block with exactly ``num_threads`` intra-op threads (None or 0: torch's default), then restore.

    Float sums inside convolutions and matrix products are split across threads, so the same data
    and seed train bit-identical weights only with the same thread count; training fixes it so a run
    is reproducible on any machine.
    """
    previous = torch.get_num_threads()
    wanted = int(num_threads) if num_threads else previous
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(previous)
