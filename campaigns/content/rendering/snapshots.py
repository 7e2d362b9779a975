"""What the send loop rendered is kept: each (template, version, compiled HTML) written once as an
EmailTemplateVersion, from which `render_as_sent` shows a sent message."""

from __future__ import annotations

import hashlib

from django.db import connection
from django.utils import timezone

from campaigns.content.rendering.parts import _compiled_html
from campaigns.models import EmailTemplate, EmailTemplateVersion

# Snapshots this process knows to exist: (template, version, compiled HTML) -> their id.
_SNAPSHOTS: dict[tuple[int, int, str], int] = {}
_SNAPSHOTS_SIZE = 256
_INSERT_SNAPSHOT = """
INSERT INTO campaigns_emailtemplateversion
    (workspace_id, template_id, version, subject, preheader, mjml, text_body, compiled_html, digest, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (template_id, version, digest) DO NOTHING
RETURNING id
"""


def template_version_snapshot(template: EmailTemplate) -> int:
    """The id of the snapshot (EmailTemplateVersion) of the template as it renders now, written
    the first time any process asks for it. The send loop asks for every message: per message
    it is a lookup in this process; per process and version one INSERT … ON CONFLICT DO NOTHING
    (and a SELECT when another worker wrote the row first)."""
    html = _compiled_html(template)
    key = (template.pk, template.version, html)
    found = _SNAPSHOTS.get(key)
    if found is not None:
        return found
    digest = hashlib.sha256(
        "\0".join((template.subject, template.preheader, template.text_body, html)).encode()
    ).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SNAPSHOT,
            [
                template.workspace_id,
                template.pk,
                template.version,
                template.subject,
                template.preheader,
                template.mjml,
                template.text_body,
                html,
                digest,
                timezone.now(),
            ],
        )
        row = cursor.fetchone()
    if row is not None:
        snapshot_id: int = row[0]
    else:
        snapshot_id = (
            EmailTemplateVersion.objects.filter(template_id=template.pk, version=template.version, digest=digest)
            .values_list("id", flat=True)
            .get()
        )
    # (The send loop runs in autocommit: the row is committed before its id is remembered.)
    if len(_SNAPSHOTS) >= _SNAPSHOTS_SIZE:
        _SNAPSHOTS.pop(next(iter(_SNAPSHOTS)))
    _SNAPSHOTS[key] = snapshot_id
    return snapshot_id
