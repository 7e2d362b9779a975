"""Writes of the sending settings: providers (credentials encrypted, write-only), sender
identities and the workspace's delivery settings; the provider check ("send test")."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import time
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import EmailValidator, URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import crypto
from campaigns.models import MAX_SMART_SENDING_HOURS, DeliverySettings, Provider, ProviderKind, SenderIdentity
from campaigns.providers.base import SendError
from campaigns.providers.registry import (
    KINDS,
    KindSpec,
    default_sender,
    kind_spec,
    provider_credentials,
    sender_from_header,
    transport_for,
)
from esp.models import Workspace
from esp.net import outbound_host_error

# Values a URL may carry as UTM parameters: utm_source, utm_medium, utm_campaign, utm_id, ...
UTM_KEY = re.compile(r"^utm_[a-z0-9_]{1,40}$")
MAX_UTM_VALUE = 200


# --- providers ---------------------------------------------------------------------------------


def _new_webhook_token() -> str:
    return secrets.token_hex(16)  # 32 characters: Provider.webhook_token's length


def generate_webhook_secret() -> str:
    return f"{secrets.token_hex(6)}:{secrets.token_urlsafe(24)}"


def _convert(field_type: str, raw: Any) -> Any:
    if field_type == "boolean":
        if isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "on", "yes")
        return bool(raw)
    if raw is None:
        return None if field_type == "integer" else ""
    if field_type == "integer":
        if isinstance(raw, str) and not raw.strip():
            return None
        return int(raw)
    return str(raw).strip()


def _refused_destination_text() -> str:
    return _(
        "This server does not connect to private, loopback or link-local addresses. "
        "Enter a public host name (the operator can allow a local relay by name)."
    )


def _destination_refused(host: str) -> bool:
    """The outbound guard's verdict on a host, given at once in the form; connecting checks
    again on the address resolved then."""
    return outbound_host_error(host) is not None


def _clean_credentials(spec: KindSpec, submitted: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """Merge the submitted credentials over the stored ones. A secret left empty keeps its
    stored value (the pages never show secrets, so an empty field means "unchanged"); a key
    not submitted at all keeps its stored value too."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for field in spec.fields:
        if field.key not in submitted or (field.secret and submitted[field.key] in ("", None)):
            value = stored.get(field.key, field.default)
        else:
            try:
                value = _convert(field.type, submitted[field.key])
            except (TypeError, ValueError):
                errors[field.key] = [_("Enter a whole number.")]
                continue
            if value is None:
                value = field.default
        if field.type == "integer" and value is not None and (not isinstance(value, int) or value < 1):
            errors[field.key] = [_("Enter a whole number of at least 1.")]
            continue
        if field.type == "url" and value:
            try:
                URLValidator(schemes=["https", "http"])(value)
            except ValidationError:
                errors[field.key] = [_("Enter a valid URL.")]
                continue
            if _destination_refused(urlsplit(str(value)).hostname or ""):
                errors[field.key] = [_refused_destination_text()]
                continue
        if spec.kind == ProviderKind.SMTP and field.key == "host" and value and _destination_refused(str(value)):
            errors[field.key] = [_refused_destination_text()]
            continue
        if field.required and value in ("", None):
            errors[field.key] = [_("This field is required.")]
            continue
        if value not in ("", None):
            cleaned[field.key] = value
    secret = cleaned.get("webhook_secret", "")
    if secret:
        user, _sep, password = str(secret).partition(":")
        if not user or not password:
            errors["webhook_secret"] = [_("Enter it as user:password.")]
    if spec.kind == ProviderKind.SMTP and cleaned.get("use_tls") and cleaned.get("use_ssl"):
        errors["use_ssl"] = [_("Choose STARTTLS or implicit TLS, not both.")]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_common(*, workspace: Workspace, name: str, rate_limit: int, provider_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": [_("This field is required.")]})
    if rate_limit < 0:
        raise ValidationError({"rate_limit": [_("Enter 0 (no limit) or more.")]})
    taken = Provider.objects.in_workspace(workspace).filter(name=name)
    if provider_id is not None:
        taken = taken.exclude(pk=provider_id)
    if taken.exists():
        raise ValidationError({"name": [_("Another provider has this name.")]})
    return name


def provider_create(
    *,
    workspace: Workspace,
    name: str,
    kind: str,
    credentials: dict[str, Any],
    rate_limit: int = 0,
    is_default: bool = False,
) -> Provider:
    """A new provider. A webhook secret left empty is generated (the ESPs' webhooks must be
    authenticated); read it back once with provider_webhook_credentials to show it."""
    if kind not in KINDS:
        raise ValidationError({"kind": [_("Choose a kind of provider.")]})
    name = _clean_common(workspace=workspace, name=name, rate_limit=rate_limit)
    spec = kind_spec(kind)
    cleaned = _clean_credentials(spec, credentials, {})
    if spec.has_webhooks and not cleaned.get("webhook_secret"):
        cleaned["webhook_secret"] = generate_webhook_secret()
    try:
        with transaction.atomic():
            provider = Provider.objects.create(
                workspace=workspace,
                name=name,
                kind=kind,
                credentials=crypto.encrypt_json(cleaned) if cleaned else "",
                rate_limit=rate_limit,
                webhook_token=_new_webhook_token(),
            )
    except IntegrityError as error:  # a concurrent create with the same name
        raise ValidationError({"name": [_("Another provider has this name.")]}) from error
    if is_default:
        provider = provider_set_default(workspace=workspace, provider_id=provider.pk) or provider
    return provider


def provider_update(
    *,
    workspace: Workspace,
    provider_id: int,
    name: str,
    credentials: dict[str, Any],
    rate_limit: int,
) -> Provider:
    """Change a provider's name, rate limit and credentials (its kind stays: another kind is
    another provider). Secrets left empty keep their stored values."""
    provider = Provider.objects.in_workspace(workspace).get(pk=provider_id)
    name = _clean_common(workspace=workspace, name=name, rate_limit=rate_limit, provider_id=provider.pk)
    try:
        stored = provider_credentials(provider)
    except crypto.DecryptionError:
        stored = {}  # unreadable after a key change: the form must supply every secret again
    cleaned = _clean_credentials(kind_spec(provider.kind), credentials, stored)
    provider.name = name
    provider.rate_limit = rate_limit
    provider.credentials = crypto.encrypt_json(cleaned) if cleaned else ""
    provider.updated_at = timezone.now()
    try:
        with transaction.atomic():
            provider.save(update_fields=["name", "rate_limit", "credentials", "updated_at"])
    except IntegrityError as error:
        raise ValidationError({"name": [_("Another provider has this name.")]}) from error
    return provider


def provider_set_default(*, workspace: Workspace, provider_id: int | None) -> Provider | None:
    """Make the provider the workspace's way out; None goes back to the outbox."""
    with transaction.atomic():
        # Lock the workspace's providers so two concurrent switches cannot both pass the
        # one-default constraint check in between.
        providers = list(Provider.objects.in_workspace(workspace).select_for_update().order_by("pk"))
        chosen = None
        if provider_id is not None:
            chosen = next((p for p in providers if p.pk == provider_id), None)
            if chosen is None:
                raise Provider.DoesNotExist
        Provider.objects.in_workspace(workspace).filter(is_default=True).exclude(
            pk=chosen.pk if chosen else None
        ).update(is_default=False, updated_at=timezone.now())
        if chosen is not None and not chosen.is_default:
            chosen.is_default = True
            chosen.updated_at = timezone.now()
            chosen.save(update_fields=["is_default", "updated_at"])
    return chosen


def provider_delete(*, workspace: Workspace, provider_id: int) -> None:
    """Messages sent through it keep their rows (their provider becomes empty); when it was the
    default, the workspace's mail goes to the outbox until another is chosen."""
    Provider.objects.in_workspace(workspace).filter(pk=provider_id).delete()


@dataclass(frozen=True)
class SendTestResult:
    ok: bool
    message: str
    provider_message_id: str = ""
    transient: bool = False


def provider_send_test(*, workspace: Workspace, provider_id: int, to_email: str) -> SendTestResult:
    """Send a short plain message straight through the provider's transport (no Message row:
    this checks the provider, not a template) and say what happened in the provider's words."""
    provider = Provider.objects.in_workspace(workspace).get(pk=provider_id)
    sender = default_sender(workspace)
    email = EmailMultiAlternatives(
        subject=_("Test from %(workspace)s through %(provider)s")
        % {"workspace": workspace.name, "provider": provider.name},
        body=_(
            "This message checks the sending provider “%(provider)s” (%(kind)s) of the workspace "
            "“%(workspace)s”. It arrived, so the provider works."
        )
        % {"provider": provider.name, "kind": provider.get_kind_display(), "workspace": workspace.name},
        from_email=sender_from_header(sender, workspace),
        to=[to_email],
        reply_to=[sender.reply_to] if sender and sender.reply_to else None,
    )
    transport = transport_for(provider)
    try:
        transport.open()
        message_id = transport.send(email)
    except SendError as error:
        label = _("Temporary failure") if error.transient else _("Refused")
        return SendTestResult(ok=False, message=f"{label}: {error.message}", transient=error.transient)
    finally:
        transport.close()
    return SendTestResult(
        ok=True,
        message=_("Sent to %(email)s (provider message id %(id)s).") % {"email": to_email, "id": message_id or "—"},
        provider_message_id=message_id,
    )


# --- sender identities -------------------------------------------------------------------------


def _clean_sender(
    *, workspace: Workspace, from_name: str, from_email: str, reply_to: str, sender_id: int | None = None
) -> tuple[str, str, str]:
    errors: dict[str, list[str]] = {}
    from_name, from_email, reply_to = from_name.strip(), from_email.strip().lower(), reply_to.strip().lower()
    if not from_name:
        errors["from_name"] = [_("This field is required.")]
    if any(ch in from_name for ch in "\r\n"):
        errors["from_name"] = [_("A name cannot contain line breaks.")]
    for key, value, required in (("from_email", from_email, True), ("reply_to", reply_to, False)):
        if not value:
            if required:
                errors[key] = [_("This field is required.")]
            continue
        try:
            EmailValidator()(value)
        except ValidationError:
            errors[key] = [_("Enter a valid email address.")]
    if not errors:
        taken = SenderIdentity.objects.in_workspace(workspace).filter(from_name=from_name, from_email=from_email)
        if sender_id is not None:
            taken = taken.exclude(pk=sender_id)
        if taken.exists():
            errors["from_email"] = [_("This sender exists already.")]
    if errors:
        raise ValidationError(errors)
    return from_name, from_email, reply_to


def sender_create(
    *, workspace: Workspace, from_name: str, from_email: str, reply_to: str = "", is_default: bool = False
) -> SenderIdentity:
    """A new sender identity; the workspace's first one becomes its default."""
    from_name, from_email, reply_to = _clean_sender(
        workspace=workspace, from_name=from_name, from_email=from_email, reply_to=reply_to
    )
    try:
        with transaction.atomic():
            sender = SenderIdentity.objects.create(
                workspace=workspace, from_name=from_name, from_email=from_email, reply_to=reply_to
            )
    except IntegrityError as error:
        raise ValidationError({"from_email": [_("This sender exists already.")]}) from error
    if is_default or not SenderIdentity.objects.in_workspace(workspace).filter(is_default=True).exists():
        sender = sender_set_default(workspace=workspace, sender_id=sender.pk)
    return sender


def sender_update(
    *, workspace: Workspace, sender_id: int, from_name: str, from_email: str, reply_to: str = ""
) -> SenderIdentity:
    sender = SenderIdentity.objects.in_workspace(workspace).get(pk=sender_id)
    sender.from_name, sender.from_email, sender.reply_to = _clean_sender(
        workspace=workspace, from_name=from_name, from_email=from_email, reply_to=reply_to, sender_id=sender.pk
    )
    try:
        with transaction.atomic():
            sender.save(update_fields=["from_name", "from_email", "reply_to"])
    except IntegrityError as error:
        raise ValidationError({"from_email": [_("This sender exists already.")]}) from error
    return sender


def sender_set_default(*, workspace: Workspace, sender_id: int) -> SenderIdentity:
    with transaction.atomic():
        senders = list(SenderIdentity.objects.in_workspace(workspace).select_for_update().order_by("pk"))
        chosen = next((s for s in senders if s.pk == sender_id), None)
        if chosen is None:
            raise SenderIdentity.DoesNotExist
        SenderIdentity.objects.in_workspace(workspace).filter(is_default=True).exclude(pk=chosen.pk).update(
            is_default=False
        )
        if not chosen.is_default:
            chosen.is_default = True
            chosen.save(update_fields=["is_default"])
    return chosen


def sender_delete(*, workspace: Workspace, sender_id: int) -> None:
    """Sent messages keep their rows. Deleting the default leaves the workspace's own sender
    address (Workspace settings) in use until another default is chosen."""
    SenderIdentity.objects.in_workspace(workspace).filter(pk=sender_id).delete()


# --- delivery settings -------------------------------------------------------------------------


def delivery_settings_get(workspace: Workspace) -> DeliverySettings:
    """The workspace's settings; the defaults (not saved) when it has never changed them."""
    row = DeliverySettings.objects.filter(workspace=workspace).first()
    return row if row is not None else DeliverySettings(workspace=workspace)


def _clean_cap(value: Any, key: str, errors: dict[str, list[str]]) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or number > 32767:
        errors[key] = [_("Enter a number of at least 1, or leave it empty for no cap.")]
        return None
    return number


def utm_clean(value: Any, errors: dict[str, list[str]], field: str = "utm_parameters") -> dict[str, str]:
    """UTM parameters as given ({key: value}) checked: problems go to `errors[field]`."""
    if not value:
        return {}
    if not isinstance(value, dict):
        errors[field] = [_("Enter the parameters as key=value lines.")]
        return {}
    cleaned: dict[str, str] = {}
    for key, raw in value.items():
        key = str(key).strip().lower()
        text = str(raw).strip() if raw is not None else ""
        if not UTM_KEY.match(key):
            errors.setdefault(field, []).append(
                _("“%(key)s” is not a UTM parameter (utm_source, utm_medium, utm_campaign, …).") % {"key": key}
            )
        elif not text or len(text) > MAX_UTM_VALUE:
            errors.setdefault(field, []).append(
                _("%(key)s needs a value of at most %(max)d characters.") % {"key": key, "max": MAX_UTM_VALUE}
            )
        else:
            cleaned[key] = text
    return cleaned


def delivery_settings_update(*, workspace: Workspace, data: dict[str, Any]) -> DeliverySettings:
    """Save the workspace's delivery settings. Keys of `data` not given keep their values."""
    current = delivery_settings_get(workspace)
    errors: dict[str, list[str]] = {}
    daily = _clean_cap(data.get("daily_cap", current.daily_cap), "daily_cap", errors)
    weekly = _clean_cap(data.get("weekly_cap", current.weekly_cap), "weekly_cap", errors)
    start = data.get("quiet_hours_start", current.quiet_hours_start)
    end = data.get("quiet_hours_end", current.quiet_hours_end)
    start = start or None
    end = end or None
    if (start is None) != (end is None):
        errors["quiet_hours_end" if end is None else "quiet_hours_start"] = [
            _("Set both ends of the quiet hours, or neither.")
        ]
    elif start is not None and (not isinstance(start, time) or not isinstance(end, time)):
        errors["quiet_hours_start"] = [_("Enter times as HH:MM.")]
    elif start is not None and start == end:
        errors["quiet_hours_end"] = [_("The quiet hours cannot start and end at the same time.")]
    soft_bounce_limit = data.get("soft_bounce_limit", current.soft_bounce_limit)
    try:
        soft_bounce_limit = int(soft_bounce_limit)
    except (TypeError, ValueError):
        soft_bounce_limit = -1
    if not 0 <= soft_bounce_limit <= 100:
        errors["soft_bounce_limit"] = [_("Enter a number from 0 to 100.")]
    smart_hours = data.get("smart_sending_hours", current.smart_sending_hours)
    try:
        smart_hours = int(smart_hours)
    except (TypeError, ValueError):
        smart_hours = -1
    if not 0 <= smart_hours <= MAX_SMART_SENDING_HOURS:
        errors["smart_sending_hours"] = [
            _("Enter a number of hours from 0 to %(max)d.") % {"max": MAX_SMART_SENDING_HOURS}
        ]
    utm = utm_clean(data.get("utm_parameters", current.utm_parameters), errors)
    if errors:
        raise ValidationError(errors)
    values = {
        "daily_cap": daily,
        "weekly_cap": weekly,
        "quiet_hours_start": start,
        "quiet_hours_end": end,
        "soft_bounce_limit": soft_bounce_limit,
        "smart_sending_hours": smart_hours,
        "track_opens": bool(data.get("track_opens", current.track_opens)),
        "track_clicks": bool(data.get("track_clicks", current.track_clicks)),
        "utm_parameters": utm,
        "updated_at": timezone.now(),
    }
    row, _created = DeliverySettings.objects.update_or_create(workspace=workspace, defaults=values)
    return row
