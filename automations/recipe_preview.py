"""A recipe drawn before it is made: the gallery shows each recipe's trigger and step tree
without copying a template or saving a segment.

The recipe's own builder runs against `PreviewTemplates`, which hands out stand-in ids and
remembers the names they stand for, so the page names "Cart coupon" where the made series will
point at the workspace's copy of it. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automations.describe import Names
from automations.recipes import RECIPES, Recipe, Templates
from automations.services import SeriesInput
from esp.models import Workspace


class PreviewTemplates(Templates):
    def __init__(self, workspace: Workspace, prefix: str) -> None:
        super().__init__(workspace, prefix)
        self.template_names: dict[int, str] = {}
        self.segment_names: dict[int, str] = {}

    def __call__(self, starter: str, name: str = "", *, edits: dict[str, str] | None = None) -> int:
        key = f"{starter}:{name}"
        if key not in self._made:
            # Stand-in ids are negative: no real row has one.
            self._made[key] = -(len(self._made) + 1)
            self.template_names[self._made[key]] = name or starter.replace("_", " ")
        return self._made[key]

    def segment(self, name: str, description: str, rules: dict[str, Any]) -> int:
        pk = -(len(self.segment_names) + 1)
        self.segment_names[pk] = name
        return pk


@dataclass(frozen=True)
class RecipePreview:
    recipe: Recipe
    data: SeriesInput
    names: Names


def recipe_preview(*, workspace: Workspace, recipe_key: str) -> RecipePreview:
    recipe = RECIPES[recipe_key]
    templates = PreviewTemplates(workspace, str(recipe.name))
    data = recipe.build(templates)
    return RecipePreview(recipe, data, Names(templates=templates.template_names, segments=templates.segment_names))
