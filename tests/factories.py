"""Factories for the test suite. Personas: two workspaces, `acme` and `globex` (conftest)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from esp import services
from esp.models import ApiScope, Membership, OutboxMessage, Role, User, Workspace

if TYPE_CHECKING:
    from audiences.models import Contact, Event

PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = factory.Faker("first_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()


class WorkspaceFactory(DjangoModelFactory[Workspace]):
    class Meta:
        model = Workspace
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")
    default_from_email = factory.LazyAttribute(lambda o: f"hello@{o.slug}.example")
    postal_address = "1 Market Street, Springfield"


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class OutboxMessageFactory(DjangoModelFactory[OutboxMessage]):
    class Meta:
        model = OutboxMessage

    workspace = factory.SubFactory(WorkspaceFactory)
    from_email = "shop@example.com"
    to = factory.LazyFunction(lambda: ["customer@example.com"])
    subject = factory.Sequence(lambda n: f"Message {n}")
    text_body = "Hello"


def member(workspace: Workspace, role: str = Role.OWNER, **user_fields: object) -> User:
    user = UserFactory(**user_fields)
    MembershipFactory(workspace=workspace, user=user, role=role)
    return user


def api_key(workspace: Workspace, scopes: list[str] | None = None, name: str = "test key") -> str:
    """A new key's secret, with all scopes unless told otherwise."""
    return services.api_key_create(
        workspace=workspace,
        name=name,
        scopes=list(ApiScope.values) if scopes is None else scopes,
        created_by=None,
    ).secret


# --- events: shared by the ingestion, facts, segment and timeline tests ----------


class EventFactory(DjangoModelFactory["Event"]):
    """A stored event of a contact (as after ingestion and identity merge)."""

    class Meta:
        model = "audiences.Event"

    workspace = factory.LazyAttribute(lambda o: o.contact.workspace if o.contact else WorkspaceFactory())
    contact = None
    type = "track"
    name = "Product Viewed"
    properties = factory.LazyFunction(dict)
    message_id = factory.Sequence(lambda n: f"test-message-{n}")
    occurred_at = factory.LazyFunction(timezone.now)


def order_event(
    contact: Contact,
    order_id: str | int | None,
    total: object,
    at: datetime,
    products: list[dict[str, object]] | None = None,
    **properties: object,
) -> Event:
    """An "Order Completed" of the contact (Segment e-commerce spec). `total=None` leaves the
    amount out (then `revenue=` or the products' prices count)."""
    props: dict[str, object] = dict(properties)
    if order_id is not None:
        props["order_id"] = order_id
    if total is not None:
        props["total"] = total
    if products is not None:
        props["products"] = products
    return EventFactory(contact=contact, name="Order Completed", properties=props, occurred_at=at)


def refund_event(contact: Contact, order_id: str, at: datetime, total: object = None, **properties: object) -> Event:
    """An "Order Refunded"; without `total` (or `revenue=`/`products=`) a full refund."""
    props: dict[str, object] = {"order_id": order_id, **properties}
    if total is not None:
        props["total"] = total
    return EventFactory(contact=contact, name="Order Refunded", properties=props, occurred_at=at)


# --- the send log: Message and MessageEvent rows made directly ---------------------


class EmailTemplateFactory(DjangoModelFactory["EmailTemplate"]):
    class Meta:
        model = "campaigns.EmailTemplate"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    subject = "Hello {{ contact.first_name|default:'there' }}"
    mjml = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>"


class MessageFactory(DjangoModelFactory["Message"]):
    """A message in the send log, sent unless told otherwise, to its contact's address."""

    class Meta:
        model = "campaigns.Message"

    workspace = factory.LazyAttribute(lambda o: o.contact.workspace if o.contact else WorkspaceFactory())
    contact = None
    source = factory.Sequence(lambda n: f"broadcast:{n}")
    template = None
    to_email = factory.LazyAttribute(lambda o: o.contact.email if o.contact else "someone@example.com")
    subject = factory.Sequence(lambda n: f"Subject {n}")
    state = "sent"
    sent_at = factory.LazyFunction(timezone.now)


class MessageEventFactory(DjangoModelFactory["MessageEvent"]):
    """An event of a message (as recorded by a webhook or our tracking), of its contact."""

    class Meta:
        model = "campaigns.MessageEvent"

    message = factory.SubFactory(MessageFactory)
    workspace = factory.LazyAttribute(lambda o: o.message.workspace)
    contact = factory.LazyAttribute(lambda o: o.message.contact)
    type = "opened"
    occurred_at = factory.LazyFunction(timezone.now)
    event_key = factory.Sequence(lambda n: f"test-event-{n}")
