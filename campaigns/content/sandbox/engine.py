"""The engine: a dedicated `Engine` over the sandbox's library, compiling a template once and
rendering it (through its render plan, or Django's nodes) within the budget."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import (
    DebugLexer,
    FilterExpression,
    Parser,
    Template,
    Variable,
    VariableDoesNotExist,
    VariableNode,
)
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.safestring import SafeData, mark_safe
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]  # unstubbed
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.content.errors import TemplateProblem
from campaigns.content.plan import MISSING as _MISSING
from campaigns.content.plan import Plan, build_plan
from campaigns.content.plan import lookup as _lookup
from campaigns.content.sandbox import mode
from campaigns.content.sandbox.budget import (
    _BUDGET,
    _UNKNOWN,
    MAX_OUTPUT_CHARS,
    MAX_RENDER_SECONDS,
    MAX_SOURCE_CHARS,
    _Budget,
)
from campaigns.content.sandbox.data import freeze
from campaigns.content.sandbox.library import library
from campaigns.content.sandbox.tags import BudgetForNode, _CountedVariableNode


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
        if mode.plain:
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
        if plan is None or mode.plain:
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


def render_string(source: str, context: Mapping[str, Any], *, autoescape: bool = True) -> str:
    """Parse and render one template source over plain data (see the module docstring)."""
    return render_compiled(compile_template(source, autoescape=autoescape), freeze(context))
