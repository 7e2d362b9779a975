"""The restricted Django template engine that personalises emails (DESIGN rule 7).

Marketers write Django template language — the language Klaviyo's templates use too — over
plain data only: dicts, lists, strings, numbers, dates. What makes that safe:

- A dedicated `Engine` whose only built-in library is the one below: the harmless tags and
  filters of Django's defaults. `{% load %}`, `{% include %}`, `{% extends %}`, `{% debug %}`,
  `{% url %}`, `{% csrf_token %}`, `{% static %}`, `{% lorem %}`, `{% querystring %}`… are
  refused while parsing, with a message saying so (not Django's "did you forget to load").
  No loaders, no libraries: nothing can reach a file or another module.
- The context is frozen into read-only copies before rendering (`freeze`): dicts become
  mappingproxies and lists tuples, so no lookup can call a mutating method such as
  `{{ event.products.clear }}`; any other type (a model instance, a request, settings) is
  refused outright. Names starting with `_` are refused by Django's own parser
  (`{{ contact.__class__ }}`), and names not in the context render as "" — `{{ settings.SECRET_KEY }}`
  is just an unknown variable.
- Budgets per render (a contextvar, no signals or threads): a deadline checked on every
  iteration of every `{% for %}` (the only construct that repeats work), and a cap on the
  characters produced by variables, filters and loop iterations. Filters that could build a
  huge string from a short template (`ljust:"100000000"`, `stringformat:"%0999999999d"`,
  `floatformat:1000000`, `join` of a long separator, `add` of long strings) check their
  arguments before doing any work.

Every failure is a `TemplateProblem(message, line)`; the line counts in the source given.

A compiled template renders through its render plan (campaigns.content.plan): the same output,
budget and errors as Django's nodes give, at under half their cost per recipient.

The package, one concern a module: `budget` (the limits and the per-render budget), `mode`
(plain Django or the render plan), `tags` and `filters` (what the library allows, each
guarded), `library` (the one built-in library), `engine` (compile and render) and `data`
(`freeze`, `Lazy`). What the rest of the project calls is importable from here.
"""

from campaigns.content.sandbox.budget import (
    MAX_DECIMALS,
    MAX_OUTPUT_CHARS,
    MAX_PRODUCED_CHARS,
    MAX_RENDER_SECONDS,
    MAX_SOURCE_CHARS,
    MAX_WIDTH,
    render_budget,
)
from campaigns.content.sandbox.data import Lazy, freeze
from campaigns.content.sandbox.engine import (
    HTML_ENGINE,
    TEXT_ENGINE,
    CompiledTemplate,
    SandboxTemplate,
    compile_template,
    render_compiled,
    render_string,
)
from campaigns.content.sandbox.library import ALLOWED_FILTERS, ALLOWED_TAGS, REFUSED_TAGS, library
from campaigns.content.sandbox.mode import plain_django
from campaigns.content.sandbox.tags import BudgetForNode

__all__ = [
    "ALLOWED_FILTERS",
    "ALLOWED_TAGS",
    "HTML_ENGINE",
    "MAX_DECIMALS",
    "MAX_OUTPUT_CHARS",
    "MAX_PRODUCED_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_SOURCE_CHARS",
    "MAX_WIDTH",
    "REFUSED_TAGS",
    "TEXT_ENGINE",
    "BudgetForNode",
    "CompiledTemplate",
    "Lazy",
    "SandboxTemplate",
    "compile_template",
    "freeze",
    "library",
    "plain_django",
    "render_budget",
    "render_compiled",
    "render_string",
]
