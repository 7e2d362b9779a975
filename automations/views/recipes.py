"""Create a series from a recipe."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from automations.forms import RecipeForm
from automations.recipes import RECIPES, series_from_recipe
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
