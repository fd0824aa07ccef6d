"""One bounded cache of fitted models per Python worker process.

Spark reuses a Python worker for many tasks, so a model loaded by the first task serves the later
ones. Every fitted step that executors load (tag preprocessing, embedders, doc2vec) goes through
:func:`cached`: least recently used first out, at most ``MAX_MODELS`` at once, so a worker that
alternates between pipeline versions cannot grow without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

# A label run holds the tag preprocessing, two embedders and the doc2vec model of one version.
MAX_MODELS = 4

T = TypeVar("T")
_MODELS: OrderedDict[Hashable, Any] = OrderedDict()


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """The model ``key`` names, loaded with ``load()`` the first time this process asks for it."""
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    model = load()
    _MODELS[key] = model
    while len(_MODELS) > MAX_MODELS:
        _MODELS.popitem(last=False)
    return model


def clear() -> None:
    """Forget every cached model (tests; a worker that must re-read changed files)."""
    _MODELS.clear()
