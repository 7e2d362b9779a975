"""The tags: Django's harmless ones as they are, `{% for %}` and variables with the budget
checked, the others refused while parsing with a message saying so."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.template import Context, Node, TemplateSyntaxError, defaulttags
from django.template.base import NodeList, Parser, Token, VariableNode, render_value_in_context
from django.template.defaulttags import ForNode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from campaigns.content.plan import count_iteration, loop_values, unpack_problem, unpacked
from campaigns.content.sandbox import mode
from campaigns.content.sandbox.budget import _BUDGET, _spend


def _refuse(name: str) -> Callable[[Parser, Token], Node]:
    def compile_refused(parser: Parser, token: Token) -> Node:
        raise TemplateSyntaxError(
            _("{%% %(tag)s %%} is not allowed in emails: only the built-in tags and filters work here.") % {"tag": name}
        )

    return compile_refused


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
        if mode.plain:
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
        if mode.plain:
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
