"""Change the contact: tag or untag, set a field, subscribe to or unsubscribe from a list.

    {"type": "update_contact", "action": "tag" | "untag", "tag": "vip", "next": …}
    {"type": "update_contact", "action": "set", "field": "city" | <custom field key>, "value": …, "next": …}
    {"type": "update_contact", "action": "subscribe" | "unsubscribe", "list": 3, "next": …}

Every change goes through audiences' own write path for the whole group at once: tags and
lists through the bulk action (one statement; consent recorded with the source "series"; the
contacts-subscribed / unsubscribed hooks fired as for a member's bulk action), fields through
the contacts' bulk upsert (the same typed checks and the same update as an import). A double
opt-in list is joined as the API's bulk upsert joins it: pending, with a confirmation mail.
Segment memberships follow as after any contact change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.bulk import contacts_bulk_apply
from audiences.contacts import REJECTED, ContactInput, contacts_upsert, custom_fields_of, parse_contact
from audiences.fields import clean_attributes
from audiences.models import BulkAction, ConsentSource, Contact, MailingList
from audiences.segments.services import segments_contacts_changed
from audiences.segments.values import RuleErrors
from automations.engine.walk import RunContext, Walker
from automations.models import TraceOutcome
from automations.steps.common import clean_id
from automations.steps.registry import CleanContext, Go, Result, StepKind, next_exit, register_step_kind

ACTIONS = ("tag", "untag", "set", "subscribe", "unsubscribe")
# The contact's own fields a step may set; the address and the shop's id are who the contact
# is, not something a series changes.
SETTABLE_FIELDS = ("first_name", "last_name", "gender", "birth_date", "phone", "city", "country", "time_zone", "locale")
# parse_contact judges a whole contact: the field is checked inside one with this address.
_CHECK_ADDRESS = "check@example.com"


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    action = step.get("action")
    if action not in ACTIONS:
        errors.add(f"{path}.action", _("Expected one of: %(allowed)s.") % {"allowed": ", ".join(ACTIONS)})
        return {}
    cleaned: dict[str, Any] = {"action": action}
    if action in ("tag", "untag"):
        tag = step.get("tag")
        if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > 64:
            errors.add(f"{path}.tag", _("Name the tag (at most 64 characters)."))
        else:
            cleaned["tag"] = tag.strip()
    elif action in ("subscribe", "unsubscribe"):
        lists = ctx.cached(
            "lists", lambda: set(MailingList.objects.in_workspace(ctx.workspace).values_list("pk", flat=True))
        )
        found = clean_id(step.get("list"), f"{path}.list", errors, lists, _("No such list."))
        if found is not None:
            cleaned["list"] = found
    else:
        cleaned.update(_clean_set(step, ctx, path, errors))
    return cleaned


def _clean_set(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    name, value = step.get("field"), step.get("value")
    fields = ctx.cached("custom_fields", lambda: custom_fields_of(ctx.workspace))
    if not isinstance(name, str) or (name not in SETTABLE_FIELDS and name not in fields):
        errors.add(
            f"{path}.field",
            _("Expected a custom field's key or one of: %(allowed)s.") % {"allowed": ", ".join(SETTABLE_FIELDS)},
        )
        return {}
    if value is None or value == "" or isinstance(value, dict):
        errors.add(f"{path}.value", _("Give the value to set."))
        return {}
    try:
        if name in SETTABLE_FIELDS:
            checked = parse_contact({"email": _CHECK_ADDRESS, name: value}, {}).values[name]
        else:
            checked = clean_attributes(fields, {name: value})[name]
    except ValidationError as error:
        for messages in error.message_dict.values():
            for message in messages:
                errors.add(f"{path}.value", message)
        return {}
    if isinstance(checked, dt.date):
        checked = checked.isoformat()
    return {"field": name, "value": checked}


def describe(step: dict[str, Any]) -> str:
    action = step.get("action")
    if action == "tag":
        return _("add the tag %(tag)s") % {"tag": step.get("tag")}
    if action == "untag":
        return _("remove the tag %(tag)s") % {"tag": step.get("tag")}
    if action == "subscribe":
        return _("subscribe to list #%(list)s") % {"list": step.get("list")}
    if action == "unsubscribe":
        return _("unsubscribe from list #%(list)s") % {"list": step.get("list")}
    return _("set %(field)s to %(value)s") % {"field": step.get("field"), "value": step.get("value")}


def _summary(step: dict[str, Any]) -> str:
    """The trace's words (stored, so not translated, like the engine's other reasons)."""
    action = step["action"]
    if action in ("tag", "untag"):
        return f"{action} {step['tag']}"
    if action in ("subscribe", "unsubscribe"):
        return f"{action} list #{step['list']}"
    return f"set {step['field']} = {step['value']}"[:200]


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    contact_ids = sorted({w.contact_id for w in walkers})
    what = _summary(step)
    if step["action"] == "set":
        done = _set_field(step, contact_ids, ctx)
    elif step["action"] == "subscribe" and _double_opt_in(step["list"], ctx):
        done = _subscribe_pending(step["list"], contact_ids, ctx)
        what += " (awaiting confirmation)"
    else:
        bulk_action = {
            "tag": BulkAction.TAG,
            "untag": BulkAction.UNTAG,
            "subscribe": BulkAction.SUBSCRIBE,
            "unsubscribe": BulkAction.UNSUBSCRIBE,
        }[step["action"]]
        value = step.get("tag") or str(step.get("list"))
        try:
            contacts_bulk_apply(
                workspace=ctx.workspace,
                contact_ids=contact_ids,
                action=bulk_action,
                value=value,
                source=ConsentSource.SERIES,
            )
        except ValidationError:
            # The list was deleted since the version was published: nothing to change.
            return {
                w.id: Go(step.get("next"), TraceOutcome.SKIPPED, f"{what}: the list no longer exists") for w in walkers
            }
        done = {contact_id: "" for contact_id in contact_ids}
    return {
        w.id: Go(step.get("next"), TraceOutcome.UPDATED, what)
        if done.get(w.contact_id) == ""
        else Go(step.get("next"), TraceOutcome.SKIPPED, f"{what}: {done.get(w.contact_id) or 'not changed'}")
        for w in walkers
    }


def _double_opt_in(list_id: int, ctx: RunContext) -> bool:
    return bool(
        MailingList.objects.in_workspace(ctx.workspace)
        .filter(pk=list_id)
        .values_list("double_opt_in", flat=True)
        .first()
    )


def _emails(contact_ids: list[int], ctx: RunContext) -> dict[int, str]:
    return dict(Contact.objects.in_workspace(ctx.workspace).filter(pk__in=contact_ids).values_list("pk", "email"))


def _subscribe_pending(list_id: int, contact_ids: list[int], ctx: RunContext) -> dict[int, str]:
    """A double opt-in list asks the contact, not the series: the contacts' bulk upsert makes
    the subscriptions pending and mails each a confirmation link; the list join (and the
    series it starts) comes with the confirmation."""
    mailing_list = MailingList.objects.in_workspace(ctx.workspace).get(pk=list_id)
    emails = _emails(contact_ids, ctx)
    order = sorted(emails)
    outcomes = contacts_upsert(
        workspace=ctx.workspace,
        rows=[ContactInput(emails[pk]) for pk in order],
        update_existing=False,
        mailing_list=mailing_list,
        consent_source=ConsentSource.SERIES,
        confirm_by_mail=True,
    )
    done = {
        pk: (o.error or "not changed") if o.status == REJECTED else "" for pk, o in zip(order, outcomes, strict=True)
    }
    segments_contacts_changed(workspace_id=ctx.workspace.pk, contact_ids=[pk for pk, why in done.items() if not why])
    return done


def _set_field(step: dict[str, Any], contact_ids: list[int], ctx: RunContext) -> dict[int, str]:
    """Contact id -> "" when set, else why not. One bulk upsert by address for the group."""
    name, value = step["field"], step["value"]
    if name in SETTABLE_FIELDS:
        values = {name: dt.date.fromisoformat(value) if name == "birth_date" else value}
        attributes: dict[str, Any] = {}
    elif name in custom_fields_of(ctx.workspace):
        values, attributes = {}, {name: value}
    else:
        return {contact_id: "the custom field no longer exists" for contact_id in contact_ids}
    emails = _emails(contact_ids, ctx)
    order = sorted(emails)
    outcomes = contacts_upsert(
        workspace=ctx.workspace,
        rows=[ContactInput(emails[pk], values=dict(values), attributes=dict(attributes)) for pk in order],
        update_existing=True,
        source=ConsentSource.SERIES,
    )
    done = {
        pk: (o.error or "not changed") if o.status == REJECTED else "" for pk, o in zip(order, outcomes, strict=True)
    }
    segments_contacts_changed(workspace_id=ctx.workspace.pk, contact_ids=[pk for pk, why in done.items() if not why])
    return done


UPDATE_CONTACT = register_step_kind(
    StepKind(
        name="update_contact",
        label=gettext_lazy("Update contact"),
        fields=frozenset({"action", "tag", "field", "value", "list"}),
        clean=_clean,
        exits=next_exit,
        run=_run,
        describe=describe,
    )
)
