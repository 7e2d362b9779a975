"""A service's ValidationError shown on a browser form (esp.forms.add_service_errors): the one
reading of it that the pages share with the API (esp.api.errors.error_fields)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from esp.forms import add_service_errors


class _Form(forms.Form):
    name = forms.CharField(required=False)
    utm_text = forms.CharField(required=False)


def _bound() -> _Form:
    form = _Form(data={})
    assert form.is_valid()
    return form


def test_field_errors_land_on_their_fields_and_the_rest_on_the_form() -> None:
    form = _bound()
    add_service_errors(form, ValidationError({"name": "Taken.", "attributes.size": ["Too big."]}))
    assert form.errors["name"] == ["Taken."]
    assert form.non_field_errors() == ["Too big."]


def test_an_error_without_fields_is_about_the_whole_form() -> None:
    form = _bound()
    add_service_errors(form, ValidationError("Nothing can be saved now."))
    assert form.non_field_errors() == ["Nothing can be saved now."]


def test_a_service_key_can_be_renamed_to_the_forms_field() -> None:
    form = _bound()
    add_service_errors(
        form,
        ValidationError({"utm_parameters": "One per line."}),
        lambda key: "utm_text" if key == "utm_parameters" else key,
    )
    assert form.errors["utm_text"] == ["One per line."]
