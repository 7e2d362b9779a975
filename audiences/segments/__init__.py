"""Segments: a rule tree kept as JSON (Segment.rules), compiled to one SQL query through the ORM
(compiler.py), with materialised membership and its enter/exit history (membership.py).

    registry.py   the condition kinds by name (the extension point: campaigns adds engagement)
    values.py     typed comparisons: which operators a type takes, its values, the SQL predicate
    conditions.py the built-in kinds: attribute, list, tag, consent, event, facts, rfm_segment,
                  lifecycle_stage
    compiler.py   validate_rules / segment_queryset: the group tree (all/any, negate)
    describe.py   a rule tree in words, for pages
    services.py   segment_save / segment_delete; selectors.py reads; membership.py refreshes
"""
