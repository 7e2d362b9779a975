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
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dt_time
from decimal import Decimal
from functools import wraps
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Context, Engine, Library, Node, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import (
    DebugLexer,
    FilterExpression,
    NodeList,
    Parser,
    Template,
    Token,
    Variable,
    VariableDoesNotExist,
    VariableNode,
    render_value_in_context,
)
from django.template.defaulttags import ForNode
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.safestring import SafeData, SafeString, mark_safe
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]  # unstubbed
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from campaigns.content.errors import TemplateProblem
from campaigns.content.plan import MISSING as _MISSING
from campaigns.content.plan import Plan, build_plan, count_iteration, loop_values, unpack_problem, unpacked
from campaigns.content.plan import lookup as _lookup

MAX_SOURCE_CHARS = 300_000
MAX_OUTPUT_CHARS = 1_000_000
# Variables, filters and loop bodies together may produce this much (intermediate results
# count too: a loop's body is counted once inside the loop and once more as the loop's output).
MAX_PRODUCED_CHARS = 4 * MAX_OUTPUT_CHARS
MAX_RENDER_SECONDS = 1.0
MAX_WIDTH = 1_000  # ljust / rjust / center / stringformat widths
MAX_DECIMALS = 20  # floatformat
_UNKNOWN = object()

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


class _Budget:
    __slots__ = ("deadline", "language", "produced", "zone")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.produced = 0
        # The active language and time zone, looked up once per email (for the filters below;
        # nothing in a sandboxed template can change either: {% language %} is refused and the
        # tz library is not loaded).
        self.language: Any = _UNKNOWN
        self.zone: Any = _UNKNOWN

    def spend(self, chars: int) -> None:
        self.produced += chars
        if self.produced > MAX_PRODUCED_CHARS:
            raise TemplateProblem(
                ngettext(
                    "The email grows beyond %(limit)s character: is a loop repeating too much?",
                    "The email grows beyond %(limit)s characters: is a loop repeating too much?",
                    MAX_OUTPUT_CHARS,
                )
                % {"limit": number_format(MAX_OUTPUT_CHARS, force_grouping=True)}
            )

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateProblem(
                _("Rendering took longer than %(seconds)s s: is a loop repeating too much?")
                % {"seconds": MAX_RENDER_SECONDS}
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("esp_template_budget", default=None)

# ESP_RENDER_PLAIN_DJANGO: render through Django's own nodes, filter expressions and filters,
# without the render plan and the shortcuts below that copy them (the budget still holds).
# The reference the shortcuts are tested equal to, and the way out should one ever differ.
_plain = bool(getattr(settings, "ESP_RENDER_PLAIN_DJANGO", False))


@receiver(setting_changed)
def _plain_changed(*, setting: str, value: Any, **kwargs: Any) -> None:
    global _plain
    if setting == "ESP_RENDER_PLAIN_DJANGO":
        _plain = bool(value)


def plain_django() -> bool:
    """Whether emails render the plain Django way (ESP_RENDER_PLAIN_DJANGO)."""
    return _plain


def _spend(chars: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(chars)


# --- tags ------------------------------------------------------------------------------------

library = Library()

for _name in ALLOWED_TAGS:
    library.tag(_name, defaulttags.register.tags[_name])


def _refuse(name: str) -> Callable[[Parser, Token], Node]:
    def compile_refused(parser: Parser, token: Token) -> Node:
        raise TemplateSyntaxError(
            _("{%% %(tag)s %%} is not allowed in emails: only the built-in tags and filters work here.") % {"tag": name}
        )

    return compile_refused


for _name in REFUSED_TAGS:
    library.tag(_name, _refuse(_name))


_DJANGO_UNPACK = re.compile(r"Need (\d+) values to unpack in for loop; got (\d+)\. ")


class _TickingNodeList(NodeList):
    """A loop's body: each pass over it (one per iteration of Django's own ForNode.render)
    checks the deadline."""

    def __iter__(self) -> Iterator[Node]:
        budget = _BUDGET.get()
        if budget is not None:
            budget.tick()
        return super().__iter__()


class BudgetForNode(ForNode):
    """Django's ForNode with the deadline checked on each iteration and its output counted."""

    def render(self, context: Context) -> SafeString:
        if _plain:
            # Django's own loop; its body ticks the deadline (_TickingNodeList).
            try:
                output = super().render(context)
            except ValueError as error:
                # Said in the marketer's words, as the plan says it.
                unpacking = _DJANGO_UNPACK.fullmatch(str(error))
                if unpacking is None:
                    raise
                raise unpack_problem(int(unpacking[1]), int(unpacking[2])) from None
            _spend(len(output))
            return mark_safe(output)  # (already safe: Django's ForNode returns mark_safe(...))
        budget = _BUDGET.get()
        # django-stubs type these loosely (str | FilterExpression, list | NodeList).
        sequence: Any = self.sequence
        nodelist_loop: Any = self.nodelist_loop
        nodelist_empty: Any = self.nodelist_empty
        parentloop = context["forloop"] if "forloop" in context else {}
        with context.push():
            values = loop_values(sequence, context)
            len_values = len(values)
            if len_values < 1:
                return nodelist_empty.render(context)  # type: ignore[no-any-return]
            if self.is_reversed:
                values = reversed(values)
            parts: list[str] = []
            loopvars = tuple(self.loopvars)
            unpack = len(loopvars) > 1
            loop_dict = context["forloop"] = {"parentloop": parentloop}
            for i, item in enumerate(values):
                if budget is not None:
                    budget.tick()
                count_iteration(loop_dict, i, len_values)
                if unpack:
                    context.update(unpacked(loopvars, item))
                else:
                    context[self.loopvars[0]] = item
                produced = 0
                for node in list.__iter__(nodelist_loop):  # (ticked above)
                    out: str = node.render_annotated(context)
                    produced += len(out)
                    parts.append(out)
                if unpack:
                    context.pop()
                if budget is not None:
                    budget.spend(produced)
        return mark_safe("".join(parts))


@library.tag("for")
def do_for(parser: Parser, token: Token) -> Node:
    node = defaulttags.do_for(parser, token)
    node.__class__ = BudgetForNode
    body: Any = node.nodelist_loop
    node.nodelist_loop = _TickingNodeList(body)
    return node


class _CountedVariableNode(VariableNode):
    """Django's VariableNode with its output counted, and the common outputs (a str, a
    SafeString) escaped without Django's general conversions, which give the same result
    for them (localising, time zones and lazy strings only concern other types)."""

    def render(self, context: Context) -> str:
        if _plain:
            rendered: str = super().render(context)
            _spend(len(rendered))
            return rendered
        try:
            output = self.filter_expression.resolve(context)
        except UnicodeDecodeError:
            return ""  # as Django's VariableNode
        kind = type(output)
        if kind is str:
            out: str = SafeString(html.escape(output)) if context.autoescape else output
        elif kind is SafeString:
            out = output
        else:
            out = render_value_in_context(output, context)
        _spend(len(out))
        return out


# --- filters ---------------------------------------------------------------------------------


def _int_arg(arg: Any) -> int | None:
    try:
        return int(str(arg).strip())
    except (TypeError, ValueError):
        return None


def _too_wide(name: str, width: int) -> TemplateProblem:
    return TemplateProblem(
        _("|%(filter)s: %(width)s is above the limit of %(limit)d.")
        % {"filter": name, "width": width, "limit": MAX_WIDTH}
    )


_FORMAT_NUMBERS = re.compile(r"\d+")


# The filters _check_args has something to say about.
_CHECKED_FILTERS = frozenset({"ljust", "rjust", "center", "stringformat", "floatformat", "join", "add"})


def _check_args(name: str, value: Any, args: tuple[Any, ...]) -> None:
    """Refuse arguments that would make a filter build a huge string, before it runs."""
    arg: Any = args[0] if args else None
    if name in ("ljust", "rjust", "center"):
        width = _int_arg(arg)
        if width is not None and width > MAX_WIDTH:
            raise _too_wide(name, width)
    elif name == "stringformat":
        for number in _FORMAT_NUMBERS.findall(str(arg)):
            if int(number) > MAX_WIDTH:
                raise _too_wide(name, int(number))
    elif name == "floatformat":
        if type(arg) is int:  # `floatformat:2` (what the line below makes of it, parsed once)
            digits: int | None = arg
        else:
            digits = _int_arg(str(arg).rstrip("gud")) if arg is not None else None
        if digits is not None and abs(digits) > MAX_DECIMALS:
            raise TemplateProblem(
                ngettext(
                    "|floatformat: at most %(limit)d decimal place.",
                    "|floatformat: at most %(limit)d decimal places.",
                    MAX_DECIMALS,
                )
                % {"limit": MAX_DECIMALS}
            )
    elif name == "join":
        try:
            size = len(value) * len(str(arg))
        except TypeError:
            size = 0
        if size > MAX_OUTPUT_CHARS:
            raise TemplateProblem(_("|join would build a text beyond the size limit."))
    elif name == "add":
        try:
            size = len(value) + len(arg)
        except TypeError:
            size = 0
        if size > MAX_OUTPUT_CHARS:
            raise TemplateProblem(_("|add would build a text beyond the size limit."))


# Filters whose result depends only on the value, the arguments, the autoescape flag and the
# active language (numbers and dates formatted for the locale; settings and the default time
# zone are fixed for the process; `date` and `time` get values already converted to the current
# time zone, which the value's repr carries). Each costs 4-25 µs, and the same values come back
# in the text part and in the next recipients' emails (a campaign's prices and dates, the
# workspace's postal address): their results are kept.
_REMEMBERED_FILTERS = frozenset({"floatformat", "date", "time", "linebreaksbr", "linebreaks"})
_REMEMBERED_SIZE = 4096
_remembered: dict[tuple[Any, ...], str] = {}
_EXACT_TYPES = frozenset({str, SafeString, int, bool, type(None)})
# Equal values that may format differently (0.0 and -0.0, Decimal 1.0 and 1.00, a datetime
# and the same instant in another zone or fold): these are told apart by their repr.
_REPR_TYPES = frozenset({float, Decimal, date, datetime, dt_time})
_NOT_KEPT = object()


@receiver(setting_changed)
def _forget_remembered(**kwargs: Any) -> None:
    # Formats and the default time zone are settings (override_settings in tests).
    _remembered.clear()


def _remembered_key(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    kind = type(value)
    if kind in _EXACT_TYPES:
        shown = value
    elif kind in _REPR_TYPES:
        shown = repr(value)
    else:
        return None
    for arg in args:
        if type(arg) not in _EXACT_TYPES:
            return None
    options: tuple[Any, ...] = ()
    if kwargs:
        # autoescape=True/False, given to the filters that need it.
        if any(type(option) not in _EXACT_TYPES for option in kwargs.values()):
            return None
        options = tuple(kwargs.items())
    budget = _BUDGET.get()
    if budget is None:
        language = get_language()
    else:
        language = budget.language
        if language is _UNKNOWN:
            language = budget.language = get_language()
    return (name, kind, shown, tuple(map(type, args)), args, options, language)


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    remembered = name in _REMEMBERED_FILTERS
    checked = name in _CHECKED_FILTERS

    @wraps(func)  # keeps is_safe/needs_autoescape/… and the signature Django checks
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        if checked:
            _check_args(name, value, args)
        key = _remembered_key(name, value, args, kwargs) if remembered and not _plain else None
        if key is None:
            result = func(value, *args, **kwargs)
        else:
            result = _remembered.get(key, _NOT_KEPT)
            if result is _NOT_KEPT:
                result = func(value, *args, **kwargs)
                if type(result) is str or type(result) is SafeString:
                    if len(_remembered) >= _REMEMBERED_SIZE:
                        _remembered.clear()
                    _remembered[key] = result
        if isinstance(result, str):
            _spend(len(result))
        elif isinstance(result, list | tuple):
            result = freeze(result)
        return result

    return guarded


for _name in ALLOWED_FILTERS:
    _func = defaultfilters.register.filters[_name]
    library.filters[_name] = _guarded(_name, _func)


# --- the engine ------------------------------------------------------------------------------


class _SoftVariable(Variable):
    """A filter argument that is missing resolves to None (`default:event.revenue` on an
    event without revenue), as a missing variable does; Django would raise instead."""

    __slots__ = ()

    def resolve(self, context: Any) -> Any:
        try:
            return super().resolve(context)
        except VariableDoesNotExist:
            return None


def _literal_args(args: list[tuple[bool, Any]]) -> tuple[Any, ...] | None:
    """A filter's argument values when all are literals (most are: `default:"there"`,
    `floatformat:2`), as FilterExpression.resolve would pass them; None when one is looked up."""
    values = []
    for lookup, arg in args:
        if not lookup:
            values.append(mark_safe(arg))
        elif isinstance(arg, Variable) and arg.lookups is None and not arg.translate and not arg.message_context:
            values.append(arg.literal)  # a number: Variable.resolve gives its literal
        else:
            return None
    return tuple(values)


def _template_localtime(value: Any, use_tz: bool | None) -> Any:
    """Django's template_localtime, with the current time zone looked up once per email
    (the lookup costs more than the conversion)."""
    if not isinstance(value, datetime):
        return value
    budget = _BUDGET.get()
    if budget is None:
        return template_localtime(value, use_tz)
    if (
        (settings.USE_TZ if use_tz is None else use_tz)
        and not timezone.is_naive(value)
        and getattr(value, "convert_to_local_time", True)
    ):
        zone = budget.zone
        if zone is _UNKNOWN:
            zone = budget.zone = timezone.get_current_timezone()
        return timezone.localtime(value, zone)
    return value


class _FastFilterExpression(FilterExpression):
    """FilterExpression.resolve with the variable found by _lookup when it can be, and what
    Django looks up on each filter at every call (its flags, its literal arguments marked
    safe) worked out once; the filters are applied exactly as Django applies them."""

    __slots__ = ("lookups", "plan")

    def __init__(self, token: str, parser: Parser) -> None:
        super().__init__(token, parser)
        var: Any = self.var
        self.lookups = var.lookups if isinstance(var, Variable) and not var.translate else None
        self.plan = tuple(
            (
                func,
                _literal_args(args),
                tuple((True, arg) if lookup else (False, mark_safe(arg)) for lookup, arg in args),
                bool(getattr(func, "expects_localtime", False)),
                bool(getattr(func, "needs_autoescape", False)),
                bool(getattr(func, "is_safe", False)),
            )
            for func, args in self.filters
        )

    def resolve(self, context: Any, ignore_failures: bool = False) -> Any:
        lookups = self.lookups
        if _plain:
            return super().resolve(context, ignore_failures)
        if lookups is not None:
            obj = _lookup(lookups, context)
            if obj is _MISSING:
                return super().resolve(context, ignore_failures)
        elif not isinstance(self.var, Variable):
            obj = self.var
        else:
            return super().resolve(context, ignore_failures)
        return self.apply_filters(obj, context) if self.plan else obj

    def apply_filters(self, obj: Any, context: Any) -> Any:
        """The filters applied to the looked-up value (the render plan looks values up itself)."""
        for func, literal_args, args, localtime, autoescape, is_safe in self.plan:
            if literal_args is not None:
                arg_vals: Any = literal_args
            else:
                arg_vals = [arg.resolve(context) if lookup else arg for lookup, arg in args]
            if localtime:
                obj = _template_localtime(obj, context.use_tz)
            if autoescape:
                new_obj = func(obj, *arg_vals, autoescape=context.autoescape)
            else:
                new_obj = func(obj, *arg_vals)
            obj = mark_safe(new_obj) if is_safe and isinstance(obj, SafeData) else new_obj
        return obj


class _SandboxParser(Parser):
    def compile_filter(self, token: str) -> FilterExpression:
        expression = _FastFilterExpression(token, self)
        for _func, args in expression.filters:
            for lookup, arg in args:
                if lookup and type(arg) is Variable:
                    arg.__class__ = _SoftVariable
        return expression


class SandboxTemplate(Template):
    def compile_nodelist(self) -> Any:
        parser = _SandboxParser(
            DebugLexer(self.source).tokenize(),
            self.engine.template_libraries,
            self.engine.template_builtins,
            self.origin,
        )
        try:
            nodelist = parser.parse()
            self.extra_data = getattr(parser, "extra_data", {})
            return nodelist
        except Exception as e:
            e.template_debug = self.get_exception_info(e, e.token)  # type: ignore[attr-defined]
            raise


def _engine(autoescape: bool) -> Engine:
    # debug=True: exceptions raised while rendering carry the line of the node (template_debug).
    engine = Engine(loaders=[], libraries={}, debug=True, autoescape=autoescape, string_if_invalid="")
    # Engine() always adds Django's default builtins (with load/include/url…): replace them.
    engine.template_builtins = [library]
    engine.template_libraries = {}
    return engine


HTML_ENGINE = _engine(autoescape=True)
TEXT_ENGINE = _engine(autoescape=False)


def _count_leaves(nodelist: Any) -> None:
    for node in nodelist:
        if type(node) is VariableNode:
            node.__class__ = _CountedVariableNode
        for attr in getattr(node, "child_nodelists", ()):
            child = getattr(node, attr, None)
            if child:
                _count_leaves(child)


def _line_of(error: BaseException, source: str) -> int | None:
    debug = getattr(error, "template_debug", None)
    if debug and debug.get("line"):
        return int(debug["line"])
    token = getattr(error, "token", None)
    if token is not None and getattr(token, "lineno", None):
        return int(token.lineno)
    if token is not None and getattr(token, "position", None):
        return source.count("\n", 0, token.position[0]) + 1
    return None


def _message(error: BaseException) -> str:
    message = str(error.message if isinstance(error, TemplateProblem) else error)
    # Django says "Invalid block tag on line 3: 'foo'…": the line is reported apart.
    return re.sub(r" on line \d+", "", message)


@dataclass
class CompiledTemplate:
    """A parsed template, ready to render for any number of recipients."""

    source: str
    template: Template
    autoescape: bool = True
    # How it renders (campaigns.content.plan); None renders through Django's nodes, as the
    # plan's tests and bench/render.py compare.
    plan: Plan | None = None


def compile_template(source: str, *, autoescape: bool = True) -> CompiledTemplate:
    """Parse once; raises TemplateProblem with the line of the first error."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateProblem(
            ngettext(
                "The template is longer than %(limit)s character.",
                "The template is longer than %(limit)s characters.",
                MAX_SOURCE_CHARS,
            )
            % {"limit": number_format(MAX_SOURCE_CHARS, force_grouping=True)}
        )
    engine = HTML_ENGINE if autoescape else TEXT_ENGINE
    try:
        template = SandboxTemplate(source, engine=engine)
    except TemplateProblem:
        raise
    except TemplateSyntaxError as error:
        raise TemplateProblem(_message(error), _line_of(error, source)) from None
    except RecursionError:
        raise TemplateProblem(_("The template is nested too deeply.")) from None
    except Exception as error:  # noqa: BLE001 — Django's parser trips on some input (StopIteration
        # for `{% with _("a")|upper as v %}`): the marketer gets a message with a line, not a 500.
        raise TemplateProblem(
            _("This tag cannot be read: %(error)s") % {"error": _message(error) or type(error).__name__},
            _line_of(error, source),
        ) from None
    try:
        _count_leaves(template.nodelist)
        plan = build_plan(template, variable_node=_CountedVariableNode, for_node=BudgetForNode)
    except RecursionError:
        raise TemplateProblem(_("The template is nested too deeply.")) from None
    return CompiledTemplate(source=source, template=template, autoescape=autoescape, plan=plan)


def render_compiled(
    compiled: CompiledTemplate, context: Mapping[str, Any], *, seconds: float = MAX_RENDER_SECONDS
) -> str:
    """Render with a fresh budget unless one is running (render_email shares one budget over
    the subject, preheader, HTML and text of a message). `context` must be frozen already."""
    budget = _BUDGET.get()
    token = None
    if budget is None:
        budget = _Budget(seconds)
        token = _BUDGET.set(budget)
    try:
        django_context = Context(dict(context), autoescape=compiled.autoescape)
        plan = compiled.plan
        output: str
        if plan is None or _plain:
            output = compiled.template.render(django_context)
        else:
            output = plan.render(django_context, budget)
    except TemplateProblem as problem:
        if problem.line is None:
            problem.line = _line_of(problem, compiled.source)
        raise
    except RecursionError:
        raise TemplateProblem(_("The template is nested too deeply.")) from None
    except Exception as error:  # noqa: BLE001 — a filter failing on odd data names its line, not a 500
        raise TemplateProblem(_message(error), _line_of(error, compiled.source)) from None
    finally:
        if token is not None:
            _BUDGET.reset(token)
    if len(output) > MAX_OUTPUT_CHARS:
        raise TemplateProblem(
            ngettext(
                "The email is larger than %(limit)s character.",
                "The email is larger than %(limit)s characters.",
                MAX_OUTPUT_CHARS,
            )
            % {"limit": number_format(MAX_OUTPUT_CHARS, force_grouping=True)}
        )
    return output


class render_budget:
    """One budget (deadline and size) shared by several renders, e.g. the parts of one email."""

    def __init__(self, seconds: float = MAX_RENDER_SECONDS) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        self._token = _BUDGET.set(_Budget(self.seconds))

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self._token)


def render_string(source: str, context: Mapping[str, Any], *, autoescape: bool = True) -> str:
    """Parse and render one template source over plain data (see the module docstring)."""
    return render_compiled(compile_template(source, autoescape=autoescape), freeze(context))


# --- plain data only -------------------------------------------------------------------------

_SCALARS = (str, int, float, bool, Decimal, date, datetime, dt_time, type(None))


class Lazy:
    """A value computed only if the template asks for it (e.g. recommended products: a query
    that most templates never need). Django calls it on lookup; the result is frozen."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute
        self._done = False
        self._value: Any = None

    def __call__(self) -> Any:
        if not self._done:
            self._value = freeze(self._compute())
            self._done = True
        return self._value


# The exact types most values have, tested before the isinstance() chain (this runs over
# every recipient's context).
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """A read-only copy of plain data: dict → mappingproxy, list/tuple → tuple. Anything that
    is not plain data (a model, a queryset, a request, a function) is refused."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is dict:
        return MappingProxyType(
            {
                (k if type(k) is str else str(k)): (v if type(v) in _PLAIN_SCALARS else freeze(v))
                for k, v in value.items()
            }
        )
    if kind is list or kind is tuple:  # (a list comprehension is quicker than tuple(generator))
        return tuple([v if type(v) in _PLAIN_SCALARS else freeze(v) for v in value])
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Lazy):
        return value
    raise TypeError(f"Email templates only see plain data, not {type(value).__name__}")
