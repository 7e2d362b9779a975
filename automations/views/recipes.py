"""The recipes gallery: each recipe drawn before it is made, and "use this recipe"."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from audiences.segments.registry import RuleContext
from automations import describe
from automations.forms import RecipeForm
from automations.recipe_preview import recipe_preview
from automations.recipes import RECIPES, series_from_recipe
from automations.tree import step_tree
from automations.views.common import (
    error_text,
    kind_label,
)
from esp.web import WorkspaceView


class RecipesView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def _render(self, request: HttpRequest, error: str = "", status: int = 200) -> HttpResponse:
        return render(
            request,
            "automations/recipes.html",
            {"recipes": [{"recipe": r, "kind": kind_label(r.kind)} for r in RECIPES.values()], "error": error},
            status=status,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = RecipeForm(request.POST)
        key = form.cleaned_data["recipe"] if form.is_valid() else ""
        if key not in RECIPES:
            return self._render(request, _("Choose one of the recipes below."), status=400)
        try:
            series = series_from_recipe(workspace=self.workspace, recipe_key=key)
        except ValidationError as error:
            return self._render(request, error_text(error), status=400)
        messages.success(request, _("Draft series created from the recipe: check it, then publish it."))
        return redirect("series", series_id=series.pk)


class RecipeView(WorkspaceView):
    """One recipe drawn before it is made: its trigger, goal and step tree."""

    def get(self, request: HttpRequest, recipe_key: str) -> HttpResponse:
        if recipe_key not in RECIPES:
            raise Http404
        preview = recipe_preview(workspace=self.workspace, recipe_key=recipe_key)
        data = preview.data
        ctx = RuleContext(self.workspace)
        rows = {
            view.key: {"step": view, "counts": None} for view in describe.step_views(data.steps, preview.names, ctx)
        }
        return render(
            request,
            "automations/recipe.html",
            {
                "recipe": preview.recipe,
                "kind": kind_label(preview.recipe.kind),
                "trigger": describe.trigger_text(data.trigger or {}, preview.names),
                "goal": describe.goal_text(data.goal or {}),
                "tree": step_tree(data.steps, rows),
                "steps_count": len(rows),
            },
        )
