"""Pages and endpoints for recipients, without login, under /e/: open pixel, click redirect,
one-click unsubscribe, preference center, view in browser. Each is addressed by an opaque
signed token; none shows or changes anything of another message."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from campaigns.tracking import views as tracking

# Any text is taken as a token here and verified by campaigns.tracking.tokens, so a mangled
# link gets our own page (and a pixel still its GIF) rather than the site's 404.
urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^o/(?P<token>[^/]{1,100})\.gif$", tracking.open_pixel, name="tracking-open"),
    re_path(r"^c/(?P<token>[^/]{1,100})$", tracking.click, name="tracking-click"),
    re_path(r"^u/(?P<token>[^/]{1,100})$", tracking.UnsubscribeView.as_view(), name="tracking-unsubscribe"),
    re_path(r"^p/(?P<token>[^/]{1,100})$", tracking.PreferencesView.as_view(), name="tracking-preferences"),
    re_path(r"^v/(?P<token>[^/]{1,100})$", tracking.BrowserView.as_view(), name="tracking-view"),
]
