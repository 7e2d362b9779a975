""" "View in browser" and the send log's preview show the template version a message was sent
with: the send loop snapshots each version once (EmailTemplateVersion), the message names its
snapshot, and later edits of the template or of the workspace's layout do not change the page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audiences.models import Contact
from campaigns.content.services import layout_save, template_create, template_delete, template_update
from campaigns.delivery.sender import messages_send_due
from campaigns.delivery.services import messages_enqueue
from campaigns.models import EmailTemplate, EmailTemplateVersion, Message, MessageState
from campaigns.tracking.tokens import message_token
from esp.models import Workspace

pytestmark = pytest.mark.django_db

BASE = "https://mail.shop.test"


def body(text: str) -> str:
    return (
        "<mjml><mj-body><mj-section><mj-column>"
        f'<mj-text>{text} {{{{ contact.first_name|default:"there" }}}}</mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )


@pytest.fixture(autouse=True)
def _public_base(settings: object) -> None:
    settings.PUBLIC_BASE_URL = BASE  # type: ignore[attr-defined]


@pytest.fixture
def template(acme: Workspace) -> EmailTemplate:
    # Through the editor's service, with the workspace's layout (header and footer) around it.
    return template_create(
        workspace=acme, data={"name": "Spring", "subject": "Spring sale", "mjml": body("Old body for")}
    )


def people(workspace: Workspace, count: int, prefix: str = "p") -> list[Contact]:
    return [
        Contact.objects.create(workspace=workspace, email=f"{prefix}{i}@example.com", first_name=f"{prefix.upper()}{i}")
        for i in range(count)
    ]


def send(workspace: Workspace, source: str, contacts: list[Contact], template: EmailTemplate) -> list[Message]:
    """Queue one message per contact and run the send loop (no provider: the outbox)."""
    messages_enqueue(
        workspace=workspace,
        source=source,
        contacts=Contact.objects.filter(pk__in=[c.pk for c in contacts]),
        template=template,
        message_class=template.message_class,
    )
    messages_send_due(batch_size=100)
    messages = list(Message.objects.filter(source=source).order_by("id"))
    assert [m.state for m in messages] == [MessageState.SENT] * len(contacts)
    return messages


def browser(message: Message) -> str:
    response = Client().get(f"/e/v/{message_token(message.pk)}")
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_the_version_that_was_sent(
    acme: Workspace, acme_client: Client, template: EmailTemplate
) -> None:
    (before,) = send(acme, "broadcast:1", people(acme, 1, "a"), template)
    edited = template_update(
        workspace=acme, template_id=template.pk, data={"subject": "Summer sale", "mjml": body("New body for")}
    )
    assert edited.version == 2

    page = browser(before)
    assert "Old body for A0" in page and "Spring sale" in page
    assert "New body" not in page and "Summer sale" not in page
    # The send log's preview of the message is the same version.
    detail = acme_client.get(f"/messages/{before.pk}/").content.decode()
    assert "Old body for A0" in detail and "New body" not in detail
    assert "from the template version that was sent" in detail

    (after,) = send(acme, "broadcast:2", people(acme, 1, "b"), edited)
    page = browser(after)
    assert "New body for B0" in page and "Summer sale" in page and "Old body" not in page
    assert before.template_version != after.template_version
    versions = EmailTemplateVersion.objects.filter(template=template).order_by("version")
    assert [(v.version, v.subject, v.workspace_id) for v in versions] == [
        (1, "Spring sale", acme.pk),
        (2, "Summer sale", acme.pk),
    ]


def test_a_new_layout_does_not_change_what_was_sent(acme: Workspace, template: EmailTemplate) -> None:
    footer = "<mj-section><mj-column><mj-text>{{ unsubscribe_url }} {{ workspace.postal_address }}</mj-text></mj-column></mj-section>"  # noqa: E501
    header = "<mj-section><mj-column><mj-text>{}</mj-text></mj-column></mj-section>"
    layout_save(workspace=acme, header_mjml=header.format("Header one"), footer_mjml=footer)
    (first,) = send(acme, "broadcast:1", people(acme, 1, "a"), EmailTemplate.objects.get(pk=template.pk))
    # The layout recompiles the template without a new version of it.
    layout_save(workspace=acme, header_mjml=header.format("Header two"), footer_mjml=footer)
    (second,) = send(acme, "broadcast:2", people(acme, 1, "b"), EmailTemplate.objects.get(pk=template.pk))

    assert "Header one" in browser(first) and "Header two" not in browser(first)
    assert "Header two" in browser(second)
    assert EmailTemplateVersion.objects.filter(template=template, version=1).count() == 2


def test_one_snapshot_per_version_and_no_query_per_message(acme: Workspace, template: EmailTemplate) -> None:
    def batch(source: str, contacts: list[Contact], tpl: EmailTemplate) -> tuple[int, int]:
        messages_enqueue(
            workspace=acme,
            source=source,
            contacts=Contact.objects.filter(pk__in=[c.pk for c in contacts]),
            template=tpl,
            message_class=tpl.message_class,
        )
        with CaptureQueriesContext(connection) as captured:
            messages_send_due(batch_size=100)
        sql = [q["sql"] for q in captured.captured_queries]
        # The outbox stores each message (a provider's own cost); everything else is per batch.
        ours = [s for s in sql if "esp_outboxmessage" not in s]
        return len(ours), sum(EmailTemplateVersion._meta.db_table in s for s in sql)

    small, small_snapshots = batch("broadcast:1", people(acme, 5, "a"), template)
    assert EmailTemplateVersion.objects.filter(template=template).count() == 1
    edited = template_update(workspace=acme, template_id=template.pk, data={"mjml": body("New body for")})
    # A new version's first batch, ten times the size: the same queries.
    large, large_snapshots = batch("broadcast:2", people(acme, 50, "b"), edited)
    assert (small_snapshots, large_snapshots) == (1, 1)
    assert large == small

    snapshot = EmailTemplateVersion.objects.get(template=template, version=2)
    sent = Message.objects.filter(source="broadcast:2")
    assert sent.count() == 50 and set(sent.values_list("template_version", flat=True)) == {snapshot.pk}
    # This process knows the snapshot now: the next batch of the version does not ask.
    again, again_snapshots = batch("broadcast:3", people(acme, 3, "c"), edited)
    assert again_snapshots == 0 and again == small - 1
    assert EmailTemplateVersion.objects.filter(template=template).count() == 2


def test_a_message_sent_before_snapshots_shows_the_current_version(acme: Workspace, template: EmailTemplate) -> None:
    (message,) = send(acme, "broadcast:1", people(acme, 1, "a"), template)
    Message.objects.filter(pk=message.pk).update(template_version=None)
    template_update(workspace=acme, template_id=template.pk, data={"mjml": body("New body for")})
    assert "New body for A0" in browser(message)


def test_a_snapshot_of_another_template_is_never_shown(
    acme: Workspace, globex: Workspace, template: EmailTemplate
) -> None:
    theirs = template_create(
        workspace=globex, data={"name": "Theirs", "subject": "Globex news", "mjml": body("globexsecretmarker")}
    )
    send(globex, "broadcast:9", people(globex, 1, "g"), theirs)
    (message,) = send(acme, "broadcast:1", people(acme, 1, "a"), template)
    foreign = EmailTemplateVersion.objects.get(template=theirs)
    Message.objects.filter(pk=message.pk).update(template_version=foreign.pk)
    page = browser(message)
    assert "globexsecretmarker" not in page and "Old body for A0" in page


def test_a_deleted_template_is_gone_with_its_snapshots(acme: Workspace, template: EmailTemplate) -> None:
    (message,) = send(acme, "broadcast:1", people(acme, 1, "a"), template)
    template_delete(workspace=acme, template_id=template.pk)
    response = Client().get(f"/e/v/{message_token(message.pk)}")
    assert response.status_code == 410 and b"This email can no longer be shown." in response.content
    assert not EmailTemplateVersion.objects.exists()
