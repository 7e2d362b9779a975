"""Where a CSV column can go: the targets, the mapping suggested by column names, the check of
the mapping a page sends, and the mapping as column indexes (_Plan) that turns a CSV record
into parse_contact's input."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from audiences.models import CustomField, ImportJob

# Where a CSV column can go. Custom fields are "attributes.<key>".
CONTACT_TARGETS = (
    "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city", "country",
    "time_zone", "locale", "tags",
)  # fmt: skip
ATTRIBUTE_PREFIX = "attributes."
IGNORE = ("", "ignore")


def _norm(name: str) -> str:
    """A column name reduced for matching: "E-mail Address" -> "emailaddress", "Prénom" -> "prenom"."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return re.sub(r"[\W_]+", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


_SYNONYMS = {
    "email": "email emailaddress mail emails emailadresse correo correoelectronico courriel adresseemail почта "
    "электроннаяпочта адресэлектроннойпочты emailадрес емейл емэйл имейл имейладрес епоща електроннапоща "
    "мейл",
    "first_name": "firstname first givenname name forename fname vorname prenom nombre имя име собственоиме",
    "last_name": "lastname last surname familyname lname nachname nom apellido фамилия фамилно фамилноиме",
    "phone": "phone phonenumber mobile mobilephone tel telephone cell cellphone телефон мобильный номертелефона "
    "мобилен",
    "city": "city town ort ville ciudad город град населенныйпункт населеномясто",
    "country": "country countrycode land pays pais страна държава",
    "gender": "gender sex geschlecht пол",
    "birth_date": "birthdate birthday dateofbirth dob geburtsdatum датарождения деньрождения рождение "
    "датанараждане рожденден",
    "external_id": "externalid customerid userid clientid id customernumber номерклиента",
    "time_zone": "timezone tz часовойпояс часовапояс",
    "locale": "locale language lang sprache язык език",
    "tags": "tags tag labels теги метки тагове етикети",
}
SYNONYMS = {_norm(word): target for target, words in _SYNONYMS.items() for word in words.split()}


def suggest_mapping(header: list[str], fields: list[CustomField]) -> dict[str, str]:
    """Column -> field by the column's name: a field's own name, a common synonym in English,
    Russian or Bulgarian, or a custom field's key or label. Each field is suggested once."""
    by_name = dict(SYNONYMS)
    for field in fields:
        for name in (field.key, field.label, ATTRIBUTE_PREFIX + field.key):
            by_name.setdefault(_norm(name), ATTRIBUTE_PREFIX + field.key)
    for name in CONTACT_TARGETS:
        by_name[_norm(name)] = name
    mapping: dict[str, str] = {}
    for column in header:
        target = by_name.get(_norm(column), "")
        if target and target not in mapping.values():
            mapping[column] = target
    return mapping


def _check_mapping(job: ImportJob, mapping: dict[str, Any], fields: dict[str, CustomField]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    problems: list[str] = []
    allowed = set(CONTACT_TARGETS) | {ATTRIBUTE_PREFIX + key for key in fields}
    for column, target in mapping.items():
        target = str(target or "").strip()
        if target in IGNORE:
            continue
        if column not in job.header:
            problems.append(_("The file has no column %(column)r.") % {"column": column})
        elif target not in allowed:
            problems.append(_("Unknown field %(field)r for column %(column)r.") % {"field": target, "column": column})
        elif target in cleaned.values():
            problems.append(_("Two columns are mapped to %(field)s.") % {"field": target})
        else:
            cleaned[column] = target
    if "email" not in cleaned.values():
        problems.append(_("Choose the column that holds the email address."))
    if problems:
        raise ValidationError({"mapping": problems})
    return cleaned


@dataclass(frozen=True)
class _Plan:
    """The mapping as column indexes, to turn one CSV record into parse_contact's input."""

    email: int
    standard: tuple[tuple[int, str], ...]  # besides the email
    attributes: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, job: ImportJob) -> _Plan:
        index = {name: i for i, name in enumerate(job.header)}
        standard = [(index[column], target) for column, target in job.mapping.items() if target in CONTACT_TARGETS]
        attributes = [
            (index[column], target.removeprefix(ATTRIBUTE_PREFIX))
            for column, target in job.mapping.items()
            if target.startswith(ATTRIBUTE_PREFIX)
        ]
        (email,) = (i for i, target in standard if target == "email")
        return cls(email, tuple(s for s in standard if s[1] != "email"), tuple(attributes))

    def data(self, record: list[str]) -> dict[str, Any] | None:
        """The row's given values (an empty cell gives nothing: it never blanks a stored
        value), or None for a blank line."""
        n = len(record)
        email = record[self.email].strip() if self.email < n else ""
        if not email and not any(cell.strip() for cell in record):
            return None
        data: dict[str, Any] = {"email": email}
        for i, name in self.standard:
            if i < n:
                value = record[i].strip()
                if value:
                    data[name] = value
        if self.attributes:
            attributes = {}
            for i, key in self.attributes:
                if i < n:
                    value = record[i].strip()
                    if value:
                        attributes[key] = value
            data["attributes"] = attributes
        return data
