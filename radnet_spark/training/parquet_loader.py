"""Stream a Parquet table folder into torch without loading it: Arrow batches → shuffled row tensors.

The table is read through ``pyarrow.dataset`` one row group at a time, in Arrow batches of at most
``batch_rows`` rows. Each epoch visits the row groups in a new order (seeded), and a bounded shuffle
buffer mixes rows across row groups, so memory stays at roughly one row group being decoded plus
``shuffle_buffer`` rows, whatever the table's size.

Anything that yields Arrow record batches per epoch and shard can stand in for the Parquet reader
(the ``BatchSource`` protocol). That is the plug-in point for a petastorm reader on stacks where it
installs; it cannot sit beside pyarrow ≥ 16 and numpy 2, which this project needs (see DESIGN).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from radnet_spark.errors import InputPathError, PipelineError
from radnet_spark.storage import to_local_path

log = logging.getLogger(__name__)

# A filter is either a pyarrow expression or ``{column: value}`` equalities (value lists mean "in").
RowFilter = ds.Expression | Mapping[str, Any] | None


@runtime_checkable
class BatchSource(Protocol):
    """Yields the Arrow record batches of one epoch for one shard of readers."""

    def iter_batches(self, epoch: int, shard: int = 0, num_shards: int = 1) -> Iterator[pa.RecordBatch]:
        """Batches of this shard in this epoch; shards together cover every row exactly once."""
        ...

    def num_rows(self) -> int:
        """Rows one epoch yields over all shards."""
        ...


def to_expression(row_filter: RowFilter) -> ds.Expression | None:
    """Turn ``{column: value}`` (or ``{column: [values]}``) into a pyarrow expression; pass others through."""
    if row_filter is None or isinstance(row_filter, ds.Expression):
        return row_filter
    expression: ds.Expression | None = None
    for column, value in row_filter.items():
        if isinstance(value, (list, tuple, set, frozenset)):
            term = pc.field(column).isin(list(value))
        else:
            term = pc.field(column) == value
        expression = term if expression is None else expression & term
    return expression


def _referenced_columns(row_filter: RowFilter) -> list[str]:
    if isinstance(row_filter, Mapping):
        return list(row_filter)
    return []


class ParquetSource:
    """A ``BatchSource`` over a Parquet table folder (hive partitions allowed).

    Args:
        path: Table folder or file; ``file:`` and ``dbfs:/`` URIs are mapped to local paths.
        columns: Columns to read.
        row_filter: Rows to keep, e.g. ``{"split": "train"}`` or a pyarrow expression.
        batch_rows: Largest Arrow batch handed out.
        max_rows: Keep at most this many rows: a fixed sample of whole row groups in seeded random
            order (the last one cut short), the same in every epoch.
        seed: Seeds the row-group order of every epoch and the ``max_rows`` sample.
        shuffle: False reads row groups in file order every epoch.
    """

    def __init__(
        self,
        path: str,
        columns: Sequence[str],
        row_filter: RowFilter = None,
        *,
        batch_rows: int = 256,
        max_rows: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, got {batch_rows}.")
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"max_rows must be positive or None, got {max_rows}.")
        self.path = path
        self.columns = list(columns)
        self.row_filter = row_filter
        self.batch_rows = batch_rows
        self.max_rows = max_rows
        self.seed = seed
        self.shuffle = shuffle
        self._dataset = _open_dataset(path)
        names = set(self._dataset.schema.names)
        missing = [name for name in [*self.columns, *_referenced_columns(row_filter)] if name not in names]
        if missing:
            raise PipelineError(
                f"Table {path} has no column {', '.join(map(repr, missing))} "
                f"(it has {', '.join(sorted(names))})."
            )
        self._expression = to_expression(row_filter)
        self._plan: list[tuple[ds.Fragment, int | None]] | None = None
        self._rows: int | None = None

    @property
    def schema(self) -> pa.Schema:
        """Schema of the whole table (not only the selected columns)."""
        return self._dataset.schema

    def _units(self) -> list[ds.Fragment]:
        # One unit per row group: the smallest piece Parquet decodes at once, and the unit of shuffling.
        units: list[ds.Fragment] = []
        for fragment in self._dataset.get_fragments(filter=self._expression):
            if isinstance(fragment, ds.ParquetFileFragment):
                units.extend(fragment.split_by_row_group(self._expression, schema=self._dataset.schema))
            else:
                units.append(fragment)
        return units

    def _count(self, unit: ds.Fragment) -> int:
        # Fragment.count_rows ignores a row-group selection; scanning no columns honours it and reads
        # only what the filter needs.
        if self._expression is None and isinstance(unit, ds.ParquetFileFragment) and unit.row_groups:
            return sum(group.num_rows for group in unit.row_groups)
        return unit.to_table(schema=self._dataset.schema, columns=[], filter=self._expression).num_rows

    def plan(self) -> list[tuple[ds.Fragment, int | None]]:
        """Row groups to read, each with a row limit (None: all its matching rows); computed once."""
        if self._plan is not None:
            return self._plan
        units = self._units()
        if self.max_rows is None:
            self._plan = [(unit, None) for unit in units]
            return self._plan
        random.Random(self.seed).shuffle(units)
        plan: list[tuple[ds.Fragment, int | None]] = []
        remaining = self.max_rows
        total = 0
        for unit in units:
            if remaining <= 0:
                break
            matching = self._count(unit)
            if matching == 0:
                continue
            take = min(matching, remaining)
            plan.append((unit, take))
            remaining -= take
            total += take
        self._plan = plan
        self._rows = total
        return plan

    def num_rows(self) -> int:
        """Rows one epoch yields (after filter and ``max_rows``)."""
        if self._rows is None:
            plan = self.plan()
            if self._rows is None:
                self._rows = sum(self._count(unit) for unit, _ in plan)
        return self._rows

    def iter_batches(self, epoch: int, shard: int = 0, num_shards: int = 1) -> Iterator[pa.RecordBatch]:
        """Record batches of at most ``batch_rows`` rows: this shard's row groups, in this epoch's order."""
        order = list(self.plan())
        if self.shuffle:
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
        for unit, limit in order[shard::num_shards]:
            remaining = math.inf if limit is None else limit
            scanner = unit.to_batches(
                schema=self._dataset.schema,
                columns=self.columns,
                filter=self._expression,
                batch_size=self.batch_rows,
            )
            for batch in scanner:
                if remaining <= 0:
                    break
                if batch.num_rows > remaining:
                    batch = batch.slice(0, int(remaining))
                remaining -= batch.num_rows
                if batch.num_rows:
                    yield batch


def _open_dataset(path: str) -> ds.Dataset:
    local = to_local_path(path)
    try:
        return ds.dataset(local, format="parquet", partitioning="hive", exclude_invalid_files=True)
    except (FileNotFoundError, pa.ArrowInvalid) as error:
        raise InputPathError(f"Cannot read Parquet table {path}: {error}.") from None


def decode_features(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow ``list<float>`` column of equal-length vectors → float32 matrix (rows, length).

    Raises:
        PipelineError: A row is null or the vectors differ in length.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise PipelineError("A feature vector is null; tag features must be complete before embedding.")
    if len(array) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size
        return np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, width)
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False))
    lengths = np.diff(offsets)
    if lengths.min() != lengths.max():
        raise PipelineError(
            f"Feature vectors differ in length ({lengths.min()} to {lengths.max()}); they must all be equal."
        )
    values = np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return values.reshape(len(array), int(lengths[0]))


def decode_images(
    array: pa.Array | pa.ChunkedArray | Sequence[bytes], image_size: int | None = None
) -> np.ndarray:
    """Binary square 8-bit images (row-major) → uint8 array (rows, S, S).

    Args:
        array: Image bytes, one square image per row.
        image_size: Expected side; None infers it from the byte length.

    Raises:
        PipelineError: A row is null, not square, or not of the expected size.
    """
    items = array.to_pylist() if isinstance(array, (pa.Array, pa.ChunkedArray)) else list(array)
    if not items:
        side = image_size or 0
        return np.zeros((0, side, side), dtype=np.uint8)
    if any(item is None for item in items):
        raise PipelineError("An image is null; the images table must only hold decoded images.")
    lengths = {len(item) for item in items}
    if len(lengths) != 1:
        raise PipelineError(
            f"Images in one batch differ in size ({sorted(lengths)} bytes); expected one size."
        )
    length = lengths.pop()
    side = math.isqrt(length)
    if side * side != length or (image_size is not None and side != image_size):
        expected = f"{image_size}×{image_size}" if image_size else "a square"
        raise PipelineError(f"An image has {length} bytes, which is not {expected} uint8 image.")
    return np.frombuffer(b"".join(items), dtype=np.uint8).reshape(len(items), side, side)


class ArrowRowDataset(IterableDataset):
    """Rows of one column of a ``BatchSource``, shuffled through a bounded buffer, as float tensors.

    Call ``set_epoch`` before each epoch when the loader uses worker processes; in-process iteration
    advances the epoch itself. Worker processes each read a disjoint share of the row groups.

    Args:
        source: Where Arrow batches come from.
        column: The column to turn into tensors.
        decode: Arrow column → numpy array with one row per record (kept compact, e.g. uint8).
        to_tensor: One decoded row → the float tensor the model eats.
        shuffle_buffer: Rows held for shuffling; 0 keeps the source's order.
        seed: Seeds the buffer's draws (together with epoch and worker).
    """

    def __init__(
        self,
        source: BatchSource,
        column: str,
        decode: Callable[[pa.Array], np.ndarray],
        to_tensor: Callable[[np.ndarray], torch.Tensor],
        *,
        shuffle_buffer: int = 1024,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be 0 or more, got {shuffle_buffer}.")
        self.source = source
        self.column = column
        self.decode = decode
        self.to_tensor = to_tensor
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.epoch = 0
        # Largest decoded batch and fullest shuffle buffer seen (in-process iteration only).
        self.peak_batch_rows = 0
        self.peak_buffered_rows = 0

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch the next iteration shuffles for."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.source.num_rows()

    def _rows(self, epoch: int, shard: int, num_shards: int) -> Iterator[np.ndarray]:
        for batch in self.source.iter_batches(epoch, shard, num_shards):
            decoded = self.decode(batch.column(self.column))
            self.peak_batch_rows = max(self.peak_batch_rows, len(decoded))
            # Copies, so a buffered row does not pin its whole decoded batch in memory.
            yield from (row.copy() for row in decoded)

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        shard, num_shards = (0, 1) if info is None else (info.id, info.num_workers)
        epoch = self.epoch
        if info is None:
            self.epoch += 1
        rng = random.Random(f"{self.seed}:{epoch}:{shard}")
        buffer: list[np.ndarray] = []
        for row in self._rows(epoch, shard, num_shards):
            if len(buffer) < self.shuffle_buffer:
                buffer.append(row)
                self.peak_buffered_rows = max(self.peak_buffered_rows, len(buffer))
                continue
            if not buffer:
                yield self.to_tensor(row)
                continue
            index = rng.randrange(len(buffer))
            buffer[index], row = row, buffer[index]
            yield self.to_tensor(row)
        rng.shuffle(buffer)
        for row in buffer:
            yield self.to_tensor(row)


def _feature_tensor(row: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(row)


def _image_tensor(row: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(row).float().div_(255.0).unsqueeze(0)


class _ImageDecoder:
    # A class rather than a lambda so datasets pickle into DataLoader worker processes.
    def __init__(self, image_size: int | None) -> None:
        self.image_size = image_size

    def __call__(self, array: pa.Array) -> np.ndarray:
        return decode_images(array, self.image_size)


def _column_dataset(
    path: str,
    column: str,
    decode: Any,
    to_tensor: Any,
    row_filter: RowFilter,
    max_rows: int | None,
    batch_rows: int,
    shuffle_buffer: int,
    seed: int,
    shuffle: bool,
) -> ArrowRowDataset:
    """One Parquet column streamed as decoded rows; unshuffled datasets get no shuffle buffer."""
    source = ParquetSource(
        path, [column], row_filter, batch_rows=batch_rows, max_rows=max_rows, seed=seed, shuffle=shuffle
    )
    return ArrowRowDataset(
        source, column, decode, to_tensor, shuffle_buffer=shuffle_buffer if shuffle else 0, seed=seed
    )


def features_dataset(
    path: str,
    *,
    column: str = "features",
    row_filter: RowFilter = None,
    max_rows: int | None = None,
    batch_rows: int = 256,
    shuffle_buffer: int = 1024,
    seed: int = 0,
    shuffle: bool = True,
) -> ArrowRowDataset:
    """Rows of a ``list<float>`` column as float32 vectors (e.g. ``tag_features.features``).

    Args:
        path: Parquet table folder or file.
        column: The vector column.
        row_filter: Rows to keep, e.g. ``{"split": "train"}``; None keeps every row.
        max_rows: Most rows per epoch (a fixed sample of row groups); None reads all.
        batch_rows: Largest Arrow batch read at once.
        shuffle_buffer: Rows held for shuffling.
        seed: Seeds the row-group order, the sample and the buffer.
        shuffle: False streams the rows in file order (validation).

    Returns:
        An iterable dataset for :func:`make_loader`.
    """
    return _column_dataset(
        path, column, decode_features, _feature_tensor, row_filter, max_rows, batch_rows, shuffle_buffer, seed,
        shuffle,
    )


def images_dataset(
    path: str,
    *,
    column: str = "image",
    image_size: int | None = None,
    row_filter: RowFilter = None,
    max_rows: int | None = None,
    batch_rows: int = 256,
    shuffle_buffer: int = 1024,
    seed: int = 0,
    shuffle: bool = True,
) -> ArrowRowDataset:
    """Rows of a binary image column as float32 1×S×S tensors in [0, 1] (e.g. ``images.image``).

    Args:
        path: Parquet table folder or file.
        column: The column of square 8-bit images (row-major bytes).
        image_size: Expected side; None infers it from the byte length.
        row_filter, max_rows, batch_rows, shuffle_buffer, seed, shuffle: As for :func:`features_dataset`.

    Returns:
        An iterable dataset for :func:`make_loader`.
    """
    return _column_dataset(
        path, column, _ImageDecoder(image_size), _image_tensor, row_filter, max_rows, batch_rows, shuffle_buffer,
        seed, shuffle,
    )


def make_loader(dataset: ArrowRowDataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """A DataLoader that batches the dataset's rows; workers read disjoint row groups."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
