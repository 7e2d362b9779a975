"""The demo shop's audience, seeded by `manage.py seed_demo` (make run): customers from
Bulgaria, Russia and beyond with typed custom fields, two lists, consent and suppressions;
then their shop history, purchase facts and segments (audiences.demo_shop)."""

from __future__ import annotations

import random

from django.db import connection

from audiences import demo_shop
from audiences.contacts import parse_contact
from audiences.models import Contact, CustomField, FieldType, SuppressionReason
from audiences.services import contacts_upsert, list_save, suppression_add
from esp.models import Workspace

PEOPLE = {
    "bg": (
        ["Иван", "Мария", "Георги", "Елена", "Димитър", "Петя", "Николай", "Ралица"],
        ["Иванов", "Петрова", "Георгиев", "Димитрова", "Николов", "Стоянова"],
        ["Sofia", "Plovdiv", "Varna", "Burgas"],
        "BG",
        "Europe/Sofia",
    ),
    "ru": (
        ["Алексей", "Ольга", "Сергей", "Анна", "Дмитрий", "Наталья", "Михаил", "Екатерина"],
        ["Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Новикова"],
        ["Moscow", "Saint Petersburg", "Kazan"],
        "RU",
        "Europe/Moscow",
    ),
    "en": (
        ["Emma", "Oliver", "Ava", "James", "Sophia", "Liam", "Grace", "Noah"],
        ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans"],
        ["London", "Manchester", "Dublin"],
        "GB",
        "Europe/London",
    ),
}
TRANSLIT = str.maketrans(
    dict(zip("абвгдезийклмнопрстуфхцъьыэюяё", "abvgdeziiklmnoprstufhcaayeuae", strict=True))
    | {"ж": "zh", "ч": "ch", "ш": "sh", "щ": "sht", "ю": "yu", "я": "ya"}
)


# Mailbox providers by locale, on the reserved .test TLD (RFC 6761): the deliverability report
# reads gmail.com.test as Gmail, and no such address can reach a real person's mailbox, whatever
# provider a visitor sets up in the demo.
DEMO_DOMAINS = {
    "en": ("gmail.com.test", "outlook.com.test", "yahoo.com.test", "hotmail.co.uk.test"),
    "bg": ("abv.bg.test", "gmail.com.test", "mail.bg.test"),
    "ru": ("mail.ru.test", "yandex.ru.test", "gmail.com.test", "inbox.ru.test"),
}


def seed(workspace: Workspace) -> None:
    if not Contact.objects.in_workspace(workspace).exists():
        _seed_audience(workspace)
    # Also for a demo workspace made before events existed; it skips what is there already.
    demo_shop.seed(workspace)
    _backdate_contacts(workspace)


def _backdate_contacts(workspace: Workspace) -> None:
    """A customer has been known since their first event: the seed writes every contact today,
    which would make the whole audience "new this month" on the Overview."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE audiences_contact c SET created_at = e.first_seen
            FROM (SELECT contact_id, min(occurred_at) AS first_seen FROM audiences_event
                  WHERE workspace_id = %(ws)s AND contact_id IS NOT NULL GROUP BY contact_id) e
            WHERE c.workspace_id = %(ws)s AND c.id = e.contact_id AND e.first_seen < c.created_at
            """,
            {"ws": workspace.pk},
        )


def _seed_audience(workspace: Workspace) -> None:
    rng = random.Random(2026)  # noqa: S311 — repeatable demo data, not a secret
    fields = {
        "income_band": CustomField(
            key="income_band", label="Income band", type=FieldType.CHOICE, choices=["low", "medium", "high"]
        ),
        "email_check_frequency": CustomField(
            key="email_check_frequency",
            label="Checks email",
            type=FieldType.CHOICE,
            choices=["daily", "weekly", "rarely"],
        ),
        "interests": CustomField(key="interests", label="Interests", type=FieldType.TEXT),
        "loyalty_member": CustomField(key="loyalty_member", label="Loyalty member", type=FieldType.BOOLEAN),
    }
    for field in fields.values():
        field.workspace = workspace
    CustomField.objects.bulk_create(fields.values())
    newsletter = list_save(
        workspace=workspace,
        data={
            "name": "Newsletter",
            "description": "Weekly deals and new arrivals",
            "is_public": True,
            "double_opt_in": True,
        },
    )
    vip = list_save(
        workspace=workspace,
        data={"name": "VIP customers", "description": "Early access to sales", "double_opt_in": False},
    )
    rows = []
    for n in range(240):
        locale = rng.choice(["bg", "bg", "ru", "en"])
        firsts, lasts, cities, country, tz = PEOPLE[locale]
        first, last = rng.choice(firsts), rng.choice(lasts)
        domain = DEMO_DOMAINS[locale][n % len(DEMO_DOMAINS[locale])]
        email = f"{first.lower().translate(TRANSLIT)}.{last.lower().translate(TRANSLIT)}{n}@{domain}"
        rows.append(
            parse_contact(
                {
                    "email": email,
                    "external_id": f"cust-{1000 + n}",
                    "first_name": first,
                    "last_name": last,
                    "city": rng.choice(cities),
                    "country": country,
                    "time_zone": tz,
                    "locale": locale,
                    "gender": rng.choice(["female", "male", ""]),
                    "birth_date": f"{rng.randint(1960, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "tags": rng.sample(["winter-sale", "sneakers", "outdoor", "kids", "gift-buyer"], rng.randint(0, 2)),
                    "attributes": {
                        "income_band": rng.choice(["low", "medium", "high"]),
                        "email_check_frequency": rng.choice(["daily", "weekly", "rarely"]),
                        "interests": rng.choice(["running", "hiking", "fashion", "home", "tech"]),
                        "loyalty_member": rng.random() < 0.3,
                    },
                },
                fields,
            )
        )
    contacts_upsert(
        workspace=workspace,
        rows=rows[:200],
        source="import",
        mailing_list=newsletter,
        consent_source="import",
        consent_text="Opted in at checkout (shop export)",
    )
    contacts_upsert(workspace=workspace, rows=rows[200:], source="api")
    contacts_upsert(
        workspace=workspace,
        rows=rows[:40],
        mailing_list=vip,
        consent_source="admin",
        consent_text="Added to VIP by the shop team",
    )
    for email, reason in [
        (rows[5].email, SuppressionReason.HARD_BOUNCE),
        (rows[17].email, SuppressionReason.COMPLAINT),
        ("old.customer@example.com", SuppressionReason.UNSUBSCRIBED),
    ]:
        suppression_add(workspace=workspace, email=email, reason=reason, note="demo data")
