"""The recipient's side of a message, under /e/, without login: open pixel, click redirect,
unsubscribe (RFC 8058 one-click), preference center, view in browser.

Nothing here reads the session or a cookie to decide anything: the token in the URL is the
only credential, and it names one message. A token that does not verify is a 404 (the pixel
still answers its GIF, so a mail client shows no broken image)."""

from __future__ import annotations

import base64
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from audiences.models import ConsentSource, Contact
from audiences.services import ConsentContext
from campaigns.models import Message
from campaigns.tracking import services
from esp.input import parse_id
from esp.net import client_ip

# A transparent 1×1 GIF (42 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0, private"
# The view-in-browser page is the marketer's HTML on our origin: no script may run there and it
# may not act as our origin (sandbox without allow-same-origin); images, styles and links work.
BROWSER_VIEW_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation; "
    "default-src 'none'; img-src * data:; style-src * 'unsafe-inline'; font-src * data:; "
    "form-action 'none'; base-uri 'none'"
)


def _agent(request: HttpRequest) -> str:
    return str(request.META.get("HTTP_USER_AGENT", ""))[:400]


def _ip(request: HttpRequest) -> str:
    return client_ip(request.META) or ""


def _invalid(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/public/invalid.html", status=404)


def _gone(request: HttpRequest, message: Message) -> HttpResponse:
    return render(request, "campaigns/public/gone.html", {"workspace": message.workspace}, status=410)


def mask_email(email: str) -> str:
    """ "j•••@example.com": enough for the person to recognise their address, not enough for
    whoever a forwarded link reaches to learn it."""
    local, at, domain = email.partition("@")
    if not at:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    message = services.message_by_token(token)
    if message is not None:
        services.open_record(message=message, user_agent=_agent(request), ip=_ip(request), method=request.method or "")
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = NO_STORE
    response["Content-Length"] = str(len(PIXEL))
    return response


def click(request: HttpRequest, token: str) -> HttpResponse:
    found = services.message_link_by_token(token)
    if found is None:
        return _invalid(request)
    message, index, url = found
    services.click_record(
        message=message, index=index, url=url, user_agent=_agent(request), ip=_ip(request), method=request.method or ""
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = NO_STORE
    # The destination need not learn our tracking URL.
    response["Referrer-Policy"] = "no-referrer"
    return response


class _MessagePage(View):
    template_name = ""

    def message(self, token: str) -> Message:
        message = services.message_by_token(token)
        if message is None:
            raise Http404
        return message

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[return-value]
        except Http404:
            return _invalid(request)

    def page(self, request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
        response = render(request, self.template_name, context, status=status)
        response["Cache-Control"] = NO_STORE
        # The token in this page's URL must not reach other sites, but the page's own forms
        # must: under "no-referrer" a browser posts them with `Origin: null`, which Django's
        # CSRF check refuses (the preference center could not be saved).
        response["Referrer-Policy"] = "same-origin"
        return response


@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(_MessagePage):
    """GET only asks (mail clients and scanners prefetch links); POST unsubscribes. The POST is
    exempt from CSRF because mailbox providers send RFC 8058's `List-Unsubscribe=One-Click`
    without cookies or a form token — the unguessable token is what authorises it, and the
    worst a forged POST can do is what the link's owner asked for."""

    template_name = "campaigns/public/unsubscribe.html"

    def _context(self, message: Message) -> dict[str, Any]:
        contact: Contact | None = None if services.is_test(message) else message.contact
        return {
            "workspace": message.workspace,
            "message": message,
            "masked_email": mask_email(contact.email) if contact else "",
            "mailing_list": message.mailing_list,
            "has_contact": contact is not None,
        }

    @staticmethod
    def question(context: dict[str, Any]) -> str:
        if context["mailing_list"] is not None:
            return _("Unsubscribe %(email)s from %(list)s?") % {
                "email": context["masked_email"],
                "list": context["mailing_list"].name,
            }
        return _("Unsubscribe %(email)s from all marketing emails of %(workspace)s?") % {
            "email": context["masked_email"],
            "workspace": context["workspace"].name,
        }

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        message = self.message(token)
        context = self._context(message)
        context["question"] = self.question(context)
        return self.page(request, context)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        message = self.message(token)
        context = self._context(message)
        if request.POST.get("confirm"):
            text = self.question(context)  # the question the person answered on our page
        else:
            text = _("One-click unsubscribe from the mailbox (List-Unsubscribe=One-Click)")
        consent = ConsentContext.from_request(request.META, ConsentSource.FORM, text)
        result = services.message_unsubscribe(message=message, context=consent)
        context.update(done=True, scope=result.scope, preferences_token=token)
        return self.page(request, context)


class PreferencesView(_MessagePage):
    """The preference center: the person's lists and the public ones, each a checkbox, and
    "unsubscribe from all". A page we render, so Django's CSRF protection applies."""

    template_name = "campaigns/public/preferences.html"

    def _contact(self, message: Message) -> Contact | None:
        return None if services.is_test(message) else message.contact

    def _render(
        self, request: HttpRequest, message: Message, preferences: services.Preferences, **extra: Any
    ) -> HttpResponse:
        contact = message.contact
        context = {
            "workspace": message.workspace,
            "masked_email": mask_email(contact.email) if contact else "",
            "preferences": preferences,
            "heading": self.heading(message),
            **extra,
        }
        return self.page(request, context)

    @staticmethod
    def heading(message: Message) -> str:
        return _("Choose the emails you want from %(workspace)s") % {"workspace": message.workspace.name}

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        message = self.message(token)
        contact = self._contact(message)
        if contact is None:
            return _gone(request, message)
        return self._render(request, message, services.preferences_of(message=message, contact=contact))

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        message = self.message(token)
        contact = self._contact(message)
        if contact is None:
            return _gone(request, message)
        chosen: set[int] = {i for i in map(parse_id, request.POST.getlist("lists")) if i is not None}
        unsubscribe_all = request.POST.get("action") == "unsubscribe_all"
        heading = self.heading(message)
        offered = services.preferences_of(message=message, contact=contact).choices
        # The consent text of each list is what the page showed next to its checkbox.
        context_for = {
            choice.mailing_list.pk: ConsentContext.from_request(
                request.META, ConsentSource.FORM, f"{heading}: {choice.mailing_list.name}"
            )
            for choice in offered
        }
        all_text = _("Unsubscribe from all") if unsubscribe_all else heading
        preferences = services.preferences_apply(
            message=message,
            contact=contact,
            chosen_list_ids=chosen,
            unsubscribe_all=unsubscribe_all,
            context_for=context_for,
            all_context=ConsentContext.from_request(request.META, ConsentSource.FORM, f"{heading}: {all_text}"),
        )
        return self._render(request, message, preferences, saved=not preferences.errors)


class BrowserView(_MessagePage):
    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        message = self.message(token)
        html = services.browser_html(message)
        if html is None:
            return _gone(request, message)
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = BROWSER_VIEW_POLICY
        response["Cache-Control"] = NO_STORE
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex"
        return response
