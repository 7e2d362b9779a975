"""The engine's only built-in library: the allowed tags and filters (tags.py, filters.py); the
refused tags say so."""

from __future__ import annotations

from django.template import Library, defaultfilters, defaulttags

from campaigns.content.sandbox.filters import _guarded
from campaigns.content.sandbox.tags import _refuse, do_for

ALLOWED_TAGS = (
    "autoescape", "comment", "cycle", "filter", "firstof", "if", "ifchanged", "now", "regroup",
    "resetcycle", "spaceless", "templatetag", "verbatim", "widthratio", "with",
)  # fmt: skip
REFUSED_TAGS = (
    "load", "include", "extends", "block", "debug", "ssi", "url", "csrf_token", "static",
    "get_static_prefix", "get_media_prefix", "lorem", "querystring", "trans", "translate",
    "blocktrans", "blocktranslate", "language", "cache",
)  # fmt: skip
# Django's default filters minus pprint (a repr of internals) and json_script (a <script>).
ALLOWED_FILTERS = tuple(sorted(set(defaultfilters.register.filters) - {"pprint", "json_script"}))


library = Library()

for _name in ALLOWED_TAGS:
    library.tag(_name, defaulttags.register.tags[_name])
for _name in REFUSED_TAGS:
    library.tag(_name, _refuse(_name))
library.tag("for", do_for)

for _name in ALLOWED_FILTERS:
    _func = defaultfilters.register.filters[_name]
    library.filters[_name] = _guarded(_name, _func)
