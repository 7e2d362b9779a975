from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")
application = get_wsgi_application()

from esp.checks import refuse_to_start_without_https  # noqa: E402  (needs Django set up)

refuse_to_start_without_https()

# The API's check of query parameters reads them from the OpenAPI document: built at boot
# (a few seconds on a busy machine), not during some client's first request.
from esp.api.schema import documented_query_parameters  # noqa: E402

documented_query_parameters()

# Everything loaded so far (Django, the URL modules, settings) lives as long as the process.
# Moving it to the permanent generation spares the cyclic GC from walking it on every full
# collection; measured on the tracking API: about 20 % less web-process CPU per event.
gc.freeze()
