"""The composer's form: audience, content, when. Choices hold only the workspace's own lists,
segments, tags, templates, senders and providers, so another workspace's id is refused as an
invalid choice before a service sees it. Times are read in the time zone the view activates
(the workspace's); the local-time field is kept as a wall clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from campaigns.broadcast_models import MAX_PREHEADER_CHARS, Broadcast, SendMode
from campaigns.broadcasts.services import MAX_THROTTLE_HOURS, WORKSPACE_SETTING, BroadcastInput
from campaigns.models import SendPriority
from campaigns.providers.forms import UtmField

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]

Choices = list[tuple[Any, str]]


@dataclass(frozen=True)
class ComposerChoices:
    """What the composer's selects offer: the workspace's own objects, by id and name."""

    lists: Choices
    segments: Choices
    tags: list[str]
    templates: Choices
    senders: Choices
    providers: Choices
    # The workspace's delivery settings, named in the tracking choices' "as set" option.
    tracks_opens: bool = True
    tracks_clicks: bool = True


def _datetime_field(label: Any, help_text: Any = "") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=DATETIME_FORMATS,
    )


def _ids(label: Any) -> forms.TypedMultipleChoiceField:
    return forms.TypedMultipleChoiceField(
        label=label, required=False, coerce=int, widget=forms.SelectMultiple(attrs={"size": 4})
    )


def _tags(label: Any) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(label=label, required=False, widget=forms.SelectMultiple(attrs={"size": 4}))


def _tracking(label: Any) -> forms.ChoiceField:
    return forms.ChoiceField(label=label, initial=WORKSPACE_SETTING, required=False)


def _tracking_choices(workspace_on: bool) -> Choices:
    setting = _("on") if workspace_on else _("off")
    return [
        (WORKSPACE_SETTING, _("As in the delivery settings (%(setting)s)") % {"setting": setting}),
        ("on", str(pgettext_lazy("switch", "On"))),
        ("off", str(pgettext_lazy("switch", "Off"))),
    ]


def _tracking_value(value: bool | None) -> str:
    return WORKSPACE_SETTING if value is None else ("on" if value else "off")


def _one(label: Any, empty: Any) -> forms.TypedChoiceField:
    field = forms.TypedChoiceField(label=label, required=False, coerce=int, empty_value=None)
    field.empty_label = empty  # type: ignore[attr-defined]
    return field


class BroadcastForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, help_text=_("For you; recipients do not see it."))
    # Audience
    include_lists = _ids(_("Lists"))
    include_segments = _ids(_("Segments"))
    include_tags = _tags(_("Tags"))
    exclude_lists = _ids(_("Except lists"))
    exclude_segments = _ids(_("Except segments"))
    exclude_tags = _tags(_("Except tags"))
    # Content
    template = _one(_("Email template"), _("Choose a template"))
    subject = forms.CharField(
        label=_("Subject"),
        max_length=998,
        required=False,
        help_text=_(
            "Empty: the template's subject. The same placeholders as the template's, e.g. {{ contact.first_name }}."
        ),
    )
    preheader = forms.CharField(
        label=_("Preheader"),
        max_length=MAX_PREHEADER_CHARS,
        required=False,
        help_text=_("The line inbox lists show after the subject. Empty: the template's."),
    )
    sender = _one(_("Sender identity"), _("The template's or the workspace's default"))
    provider = _one(_("Sending provider"), _("The workspace's default"))
    # Tracking
    track_opens = _tracking(_("Track opens"))
    track_clicks = _tracking(_("Track clicks"))
    utm_parameters = UtmField(
        help_text=_(
            "One key=value a line, e.g. utm_campaign=spring-sale: added to tracked links, over the "
            "delivery settings' own parameters."
        ),
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "utm_campaign=spring-sale"}),
    )
    # When
    send_mode = forms.ChoiceField(
        label=_("When"), choices=SendMode.choices, initial=SendMode.NOW, widget=forms.RadioSelect
    )
    send_at = _datetime_field(_("Date and time (workspace time)"))
    local_at = _datetime_field(
        _("Date and time in each contact's zone"),
        _("Contacts without a time zone get it at this time in the workspace's zone."),
    )
    throttle_hours = forms.IntegerField(
        label=_("Spread over hours"),
        required=False,
        min_value=0,
        max_value=MAX_THROTTLE_HOURS,
        help_text=_("0 or empty: all at once."),
    )
    priority = forms.TypedChoiceField(
        label=_("Priority under the frequency cap"),
        coerce=int,
        choices=SendPriority.choices,
        initial=SendPriority.PROMOTIONAL,
        help_text=_("When a contact's cap leaves room for one email, the higher priority goes."),
    )

    def __init__(self, *args: Any, choices: ComposerChoices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("include_lists", "exclude_lists"):
            self._set_choices(name, choices.lists)
        for name in ("include_segments", "exclude_segments"):
            self._set_choices(name, choices.segments)
        for name in ("include_tags", "exclude_tags"):
            self._set_choices(name, [(tag, tag) for tag in choices.tags])
        for name, options in (
            ("template", choices.templates),
            ("sender", choices.senders),
            ("provider", choices.providers),
        ):
            field = self.fields[name]
            self._set_choices(name, [("", getattr(field, "empty_label", "—")), *options])
        self._set_choices("track_opens", _tracking_choices(choices.tracks_opens))
        self._set_choices("track_clicks", _tracking_choices(choices.tracks_clicks))

    def _set_choices(self, name: str, options: Choices) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = options

    @staticmethod
    def initial_for(broadcast: Broadcast) -> dict[str, Any]:
        """The form's values for a saved broadcast (the view activates the workspace's zone)."""
        local_at = broadcast.local_at.replace(tzinfo=None) if broadcast.local_at else None
        return {
            "name": broadcast.name,
            "include_lists": broadcast.include_lists,
            "include_segments": broadcast.include_segments,
            "include_tags": broadcast.include_tags,
            "exclude_lists": broadcast.exclude_lists,
            "exclude_segments": broadcast.exclude_segments,
            "exclude_tags": broadcast.exclude_tags,
            "template": broadcast.template_id,
            "subject": broadcast.subject,
            "preheader": broadcast.preheader,
            "track_opens": _tracking_value(broadcast.track_opens),
            "track_clicks": _tracking_value(broadcast.track_clicks),
            "utm_parameters": broadcast.utm_parameters,
            "sender": broadcast.sender_id,
            "provider": broadcast.provider_id,
            "send_mode": broadcast.send_mode,
            "send_at": broadcast.send_at,
            "local_at": local_at,
            "throttle_hours": broadcast.throttle_hours,
            "priority": broadcast.priority,
        }

    def broadcast_input(self) -> BroadcastInput:
        """The services' input. Lists are always given (an emptied select clears them); an
        empty sender or provider is 0, which the services read as "the default"."""
        data = self.cleaned_data
        return BroadcastInput(
            name=data["name"],
            include_lists=data["include_lists"],
            include_segments=data["include_segments"],
            include_tags=data["include_tags"],
            exclude_lists=data["exclude_lists"],
            exclude_segments=data["exclude_segments"],
            exclude_tags=data["exclude_tags"],
            template=data.get("template"),
            subject=data.get("subject") or "",
            preheader=data.get("preheader") or "",
            track_opens=_tracking_input(data.get("track_opens")),
            track_clicks=_tracking_input(data.get("track_clicks")),
            utm_parameters=data.get("utm_parameters") or {},
            sender=data.get("sender") or 0,
            provider=data.get("provider") or 0,
            send_mode=data["send_mode"],
            send_at=data.get("send_at"),
            local_at=wall_clock(data.get("local_at")),
            throttle_hours=data.get("throttle_hours") or 0,
            priority=data["priority"],
        )


def _tracking_input(value: str | None) -> bool | str:
    return WORKSPACE_SETTING if value in (None, "", WORKSPACE_SETTING) else value == "on"


def wall_clock(value: dt.datetime | None) -> dt.datetime | None:
    """A datetime-local read as the time on a wall (the form made it aware in the workspace's
    zone; the zone is dropped again)."""
    if value is None:
        return None
    return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
