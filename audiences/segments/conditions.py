"""The built-in kinds of segment condition (see registry.py for the contract).

    attribute        {"kind": "attribute", "field": "country" | "attributes.<key>", "operator", "value"}
    list             {"kind": "list", "operator": "in" | "not_in", "list_id": 3, "status": "" | "subscribed" | ...}
    tag              {"kind": "tag", "operator": "in" | "not_in" | "contains" | "is_set" | "not_set", "value": [...]}
    consent          {"kind": "consent", "did": true, "action": "confirmed", "list_id": null | 3}
    event            {"kind": "event", "did": true, "name": "Order Completed",
                      "where": [{"property": "total", "operator": "gt", "value": 50}],
                      "count_operator": "gte" | "lte" | "eq", "count": 2,
                      "period": "ever" | "in_last_days" | "between", "days": 30, "from": "…", "to": "…"}
    facts            {"kind": "facts", "field": "orders_count" | ..., "operator", "value"}
    rfm_segment      {"kind": "rfm_segment", "operator": "in" | "not_in", "value": ["champions", ...]}
    lifecycle_stage  {"kind": "lifecycle_stage", "operator": "in" | "not_in", "value": ["loyal", ...]}

Field names and operators come only from the whitelists of each module; values become bound
parameters. One concern a module: contact_conditions (attribute, list, tag, consent),
event_conditions (event), purchase_conditions (facts, rfm_segment, lifecycle_stage), and
condition_helpers (what they share). This module registers them all, in the builder's order.
"""

from __future__ import annotations

from audiences.segments.contact_conditions import (
    ATTRIBUTE,
    CONSENT,
    CONTACT_FIELDS,
    CUSTOM_PREFIX,
    CUSTOM_TYPES,
    LIST,
    LIST_OPERATORS,
    NULLABLE_CONTACT_FIELDS,
    TAG,
    FieldSpec,
)
from audiences.segments.event_conditions import (
    COUNT_OPERATORS,
    EVENT,
    MAX_COUNT,
    MAX_NAME,
    MAX_PROPERTY,
    MAX_WHERE,
    NUMERIC_PROPERTY_OPERATORS,
    PERIODS,
    PROPERTY_OPERATORS,
)
from audiences.segments.purchase_conditions import FACT_FIELDS, FACTS, LIFECYCLE_STAGE, RFM_SEGMENT, FactSpec
from audiences.segments.registry import register_condition_kind

__all__ = [
    "ATTRIBUTE",
    "CONSENT",
    "CONTACT_FIELDS",
    "COUNT_OPERATORS",
    "CUSTOM_PREFIX",
    "CUSTOM_TYPES",
    "EVENT",
    "FACTS",
    "FACT_FIELDS",
    "LIFECYCLE_STAGE",
    "LIST",
    "LIST_OPERATORS",
    "MAX_COUNT",
    "MAX_NAME",
    "MAX_PROPERTY",
    "MAX_WHERE",
    "NULLABLE_CONTACT_FIELDS",
    "NUMERIC_PROPERTY_OPERATORS",
    "PERIODS",
    "PROPERTY_OPERATORS",
    "RFM_SEGMENT",
    "TAG",
    "FactSpec",
    "FieldSpec",
]

for _kind in (ATTRIBUTE, LIST, TAG, CONSENT, EVENT, FACTS, RFM_SEGMENT, LIFECYCLE_STAGE):
    register_condition_kind(_kind)
