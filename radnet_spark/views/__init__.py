"""The views registry: every view the pipeline can embed, by the name ``cluster.views`` uses.

A new view is one module with a :class:`~radnet_spark.views.base.View` subclass and one line here
(or :func:`register_view` from outside the package).
"""

from __future__ import annotations

from radnet_spark.views.base import FittedView, View, ViewInputs
from radnet_spark.views.diagnosis import DiagnosisView
from radnet_spark.views.image import ImageView
from radnet_spark.views.pretrained_image import PretrainedImageView
from radnet_spark.views.pretrained_text import PretrainedTextView
from radnet_spark.views.tags import TagsView

VIEWS: dict[str, View] = {
    view.name: view
    for view in (TagsView(), ImageView(), DiagnosisView(), PretrainedImageView(), PretrainedTextView())
}


def register_view(view: View) -> View:
    """Make ``view`` available to ``cluster.views`` under its name (a later registration replaces it)."""
    VIEWS[view.name] = view
    return view


def get_view(name: str) -> View:
    """The registered view called ``name``; ValueError naming the known ones otherwise."""
    view = VIEWS.get(name)
    if view is None:
        raise ValueError(f"Unknown view {name!r}; choose from {', '.join(VIEWS)}.")
    return view



def views_k(views: list[str], view_k: dict[str, int]) -> dict[str, int]:
    """k of every view on its own: ``cluster.view_k`` where it names the view, else the view's default."""
    return {name: int(view_k.get(name, get_view(name).default_k)) for name in views}


__all__ = ["VIEWS", "FittedView", "View", "ViewInputs", "get_view", "register_view", "views_k"]
