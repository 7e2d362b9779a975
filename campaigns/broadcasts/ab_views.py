"""The A/B test page of a broadcast: set the test up on a draft (variants, test group, metric,
wait, who picks), then each variant's figures with the confidence, the decision and its reason,
and, when the marketer picks, one button per variant. Viewers read; marketers change. The form
only shapes what the browser posts: every rule is checked by campaigns.broadcasts.ab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.broadcast_models import (
    MAX_PREHEADER_CHARS,
    AbMetric,
    AbState,
    Broadcast,
    BroadcastStatus,
    BroadcastTest,
    BroadcastVariant,
    WinnerMode,
)
from campaigns.broadcasts import ab, ab_stats, selectors
from campaigns.models import EmailTemplate, SenderIdentity
from esp.api.errors import error_fields
from esp.models import Role, Workspace
from esp.web import WorkspaceView, request_user

LETTERS = ab.LETTERS


def _int_choices(choices: list[tuple[Any, str]]) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(choices=choices, coerce=int, empty_value=None, required=False)


class AbForm(forms.Form):
    variant_count = forms.TypedChoiceField(
        label=gettext_lazy("Variants"), choices=[(n, str(n)) for n in (2, 3, 4)], coerce=int, initial=2
    )
    test_percent = forms.IntegerField(
        label=gettext_lazy("Test group, % of the recipients"),
        min_value=1,
        max_value=ab.MAX_TEST_PERCENT,
        initial=20,
        help_text=gettext_lazy("Split evenly between the variants; the winner goes to everyone else."),
    )
    metric = forms.ChoiceField(label=gettext_lazy("Winning metric"), choices=AbMetric.choices)
    wait_hours = forms.IntegerField(
        label=gettext_lazy("Wait, hours"),
        min_value=1,
        max_value=ab.MAX_WAIT_HOURS,
        initial=4,
        help_text=gettext_lazy("Counted from the last test message sent; opens and clicks within it count."),
    )
    winner_mode = forms.ChoiceField(label=gettext_lazy("The winner is chosen"), choices=WinnerMode.choices)

    def __init__(self, *args: Any, templates: list[tuple[int, str]], senders: list[tuple[int, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        for letter in LETTERS:
            self.fields[f"subject_{letter}"] = forms.CharField(
                label=gettext_lazy("Subject"), max_length=998, required=False
            )
            self.fields[f"preheader_{letter}"] = forms.CharField(
                label=gettext_lazy("Preheader"), max_length=MAX_PREHEADER_CHARS, required=False
            )
            self.fields[f"template_{letter}"] = _int_choices([("", _("The broadcast's email")), *templates])
            self.fields[f"template_{letter}"].label = gettext_lazy("Email")
            self.fields[f"sender_{letter}"] = _int_choices([("", _("The broadcast's sender")), *senders])
            self.fields[f"sender_{letter}"].label = gettext_lazy("Sender")
            self.fields[f"delay_{letter}"] = forms.IntegerField(
                label=gettext_lazy("Send later by, hours"), min_value=0, max_value=ab.MAX_SEND_DELAY_HOURS, initial=0
            )

    def variant_rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (letter, [self[f"{name}_{letter}"] for name in ("subject", "preheader", "template", "sender", "delay")])
            for letter in LETTERS
        ]

    def ab_input(self) -> ab.AbInput:
        data = self.cleaned_data
        variants = [
            ab.VariantInput(
                subject=data[f"subject_{letter}"],
                preheader=data[f"preheader_{letter}"],
                template=data[f"template_{letter}"],
                sender=data[f"sender_{letter}"],
                send_delay_hours=data[f"delay_{letter}"],
            )
            for letter in LETTERS[: data["variant_count"]]
        ]
        return ab.AbInput(
            variants=variants,
            test_percent=data["test_percent"],
            metric=data["metric"],
            wait_hours=data["wait_hours"],
            winner_mode=data["winner_mode"],
        )

    @staticmethod
    def initial_for(test: BroadcastTest | None, variants: list[BroadcastVariant]) -> dict[str, Any]:
        if test is None:
            return {}
        initial: dict[str, Any] = {
            "variant_count": len(variants),
            "test_percent": test.test_percent,
            "metric": test.metric,
            "wait_hours": test.wait_hours,
            "winner_mode": test.winner_mode,
        }
        for variant in variants:
            initial |= {
                f"subject_{variant.letter}": variant.subject,
                f"preheader_{variant.letter}": variant.preheader,
                f"template_{variant.letter}": variant.template_id,
                f"sender_{variant.letter}": variant.sender_id,
                f"delay_{variant.letter}": variant.send_delay_hours,
            }
        return initial

    def add_service_errors(self, error: ValidationError) -> None:
        for path, problems in error_fields(error).items():
            field = path if path in self.fields else None
            for problem in problems:
                # "variants.B" names a variant, shown above the form with its letter.
                self.add_error(field, problem if field or "." not in path else f"{path[-1]}: {problem}")


@dataclass
class VariantRow:
    variant: BroadcastVariant
    figures: ab_stats.VariantFigures
    rate: float | None
    chance: float | None  # 3–4 variants: the probability to be the best
    leads: bool

    @property
    def rate_text(self) -> str:
        return ab_stats.percent(self.rate) if self.rate is not None else ""

    @property
    def chance_text(self) -> str:
        return ab_stats.percent(self.chance) if self.chance is not None else "—"


def _broadcast_or_404(workspace: Workspace, broadcast_id: int) -> Broadcast:
    try:
        return selectors.broadcast_get(workspace=workspace, broadcast_id=broadcast_id)
    except Broadcast.DoesNotExist:
        raise Http404 from None


class BroadcastAbView(WorkspaceView):
    """GET shows the test; POST `action` = save (set up), remove, or pick (with `letter`)."""

    def _form(self, data: Any = None, initial: dict[str, Any] | None = None) -> AbForm:
        templates = list(EmailTemplate.objects.in_workspace(self.workspace).order_by("name").values_list("pk", "name"))
        senders = [(s.pk, str(s)) for s in SenderIdentity.objects.in_workspace(self.workspace).order_by("from_email")]
        form = AbForm(data, initial=initial, templates=templates, senders=senders)
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        return form

    def _render(
        self, request: HttpRequest, broadcast: Broadcast, form: AbForm | None = None, status: int = 200
    ) -> HttpResponse:
        test = ab_stats.ab_test_of(broadcast)
        variants = list(
            BroadcastVariant.objects.filter(workspace=self.workspace, broadcast=broadcast).select_related(
                "template", "sender"
            )
        )
        context: dict[str, Any] = {
            "broadcast": broadcast,
            "test": test,
            "variants": variants,
            "can_write": self.can(Role.MARKETER),
            "editable": broadcast.status == BroadcastStatus.DRAFT,
        }
        if broadcast.status == BroadcastStatus.DRAFT:
            context["form"] = form or self._form(initial=AbForm.initial_for(test, variants))
        if test is not None and test.state != AbState.SETUP:
            context |= self._results(test, broadcast, variants)
        with timezone.override(self.workspace.zone):
            return render(request, "campaigns/broadcasts/ab.html", context, status=status)

    def _results(self, test: BroadcastTest, broadcast: Broadcast, variants: list[BroadcastVariant]) -> dict[str, Any]:
        found = ab_stats.figures(test=test, letters=[v.letter for v in variants])
        judged = ab_stats.verdict(found, test.metric)
        rows = [
            VariantRow(
                variant=variant,
                figures=figures,
                rate=figures.rate(test.metric),
                chance=judged.chances.get(variant.letter),
                leads=variant.letter == judged.leader,
            )
            for variant, figures in zip(variants, found.variants, strict=True)
        ]
        return {
            "rows": rows,
            "rest": found.rest,
            "verdict": judged,
            "metric_label": AbMetric(test.metric).label if test.metric in AbMetric.values else test.metric,
            "rate_label": capfirst(ab_stats.metric_rate_name(test.metric)),
            "waits_for_resume": test.state in ab.UNDECIDED and broadcast.status == BroadcastStatus.PAUSED,
            "can_pick": self.can(Role.MARKETER)
            and test.winner_mode == WinnerMode.MANUAL
            and test.state in ab.UNDECIDED
            and broadcast.status == BroadcastStatus.SENDING,
        }

    def get(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        return self._render(request, _broadcast_or_404(self.workspace, broadcast_id))

    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = _broadcast_or_404(self.workspace, broadcast_id)
        action = request.POST.get("action", "")
        try:
            if action == "save":
                form = self._form(request.POST)
                if not form.is_valid():
                    return self._render(request, broadcast, form, status=400)
                try:
                    ab.ab_configure(workspace=self.workspace, broadcast_id=broadcast.pk, data=form.ab_input())
                except ValidationError as error:
                    form.add_service_errors(error)
                    return self._render(request, broadcast, form, status=400)
                messages.success(request, _("A/B test saved."))
            elif action == "remove":
                ab.ab_remove(workspace=self.workspace, broadcast_id=broadcast.pk)
                messages.success(request, _("A/B test removed: everyone gets the broadcast's email."))
            elif action == "pick":
                letter = request.POST.get("letter", "")
                test = ab.ab_pick(
                    workspace=self.workspace, broadcast_id=broadcast.pk, letter=letter, user=request_user(request)
                )
                messages.success(
                    request,
                    _("%(winner)s goes to the other %(n)d recipients.")
                    % {"winner": test.winner, "n": test.rest_recipients},
                )
            else:
                messages.error(request, _("Unknown action: expected save, remove or pick."))
                return self._render(request, broadcast, status=400)
        except ValidationError as error:
            messages.error(request, " ".join(" ".join(p) for p in error_fields(error).values()))
            return self._render(request, broadcast, status=400)
        return redirect("broadcast-ab", broadcast_id=broadcast.pk)
