"""JSON input keeps its JSON types. DRF coerces for HTML forms' sake: `"name": 0` becomes
"0", `"double_opt_in": 0` becomes False, `"list": "7"` becomes 7. A JSON client sending those
has a bug the OpenAPI document calls invalid, so it gets a 400 naming the field, as the
document says. Form data (a QueryDict: browser forms, query strings) is left as DRF reads it.

Installed once for every serializer (EspConfig.ready), not field by field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _
from rest_framework import serializers


def _json_input(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    data = getattr(field.root, "initial_data", None)
    return data is not None and not isinstance(data, QueryDict)


def _strict(
    original: Callable[..., Any], accepts: Callable[[Any], bool], message: Callable[[], str]
) -> Callable[..., Any]:
    def to_internal_value(self: Any, data: Any) -> Any:
        if not accepts(data) and _json_input(self):
            raise serializers.ValidationError(message(), code="invalid")
        return original(self, data)

    to_internal_value.strict_json = True  # type: ignore[attr-defined]
    return to_internal_value


def install() -> None:
    if getattr(serializers.CharField.to_internal_value, "strict_json", False):
        return
    serializers.CharField.to_internal_value = _strict(  # type: ignore[method-assign]
        serializers.CharField.to_internal_value, lambda value: isinstance(value, str), lambda: _("Expected a string.")
    )
    serializers.BooleanField.to_internal_value = _strict(  # type: ignore[method-assign]
        serializers.BooleanField.to_internal_value,
        lambda value: isinstance(value, bool),
        lambda: _("Expected true or false."),
    )
    serializers.IntegerField.to_internal_value = _strict(  # type: ignore[method-assign]
        serializers.IntegerField.to_internal_value,
        lambda value: isinstance(value, int) and not isinstance(value, bool),
        lambda: _("Expected a whole number."),
    )


class RefuseUnknownFields(serializers.Serializer[Any]):
    """A request serializer that answers a JSON key it does not declare with a 400 naming it,
    instead of dropping it: a misspelt `move_wating` would otherwise do nothing, silently.
    Read-only fields count as unknown in a request."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            writable = sorted(name for name, field in self.fields.items() if not field.read_only)
            unknown = sorted(str(key) for key in data if key not in writable)
            if unknown:
                message = _("Unknown field; expected: %(names)s.") % {"names": ", ".join(writable) or _("none")}
                raise serializers.ValidationError({name: [message] for name in unknown})
        return super().to_internal_value(data)


class QueryParameters(serializers.Serializer[Any]):
    """A serializer of query parameters that refuses one given empty (`?to=`) with a 400 naming
    it, instead of reading it as left out: a client that sends an empty date by mistake must
    not silently get another period than it meant."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, QueryDict):
            empty = sorted(
                name
                for name, field in self.fields.items()
                if name in data and data.get(name) == "" and not getattr(field, "allow_blank", False)
            )
            if empty:
                message = _("Give a value, or leave the parameter out.")
                raise serializers.ValidationError({name: [message] for name in empty})
        return super().to_internal_value(data)
