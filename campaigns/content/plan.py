"""A sandboxed template's nodes as a render plan: the same output as Django's own rendering of
the same nodes, at a fraction of the cost.

Django renders a template as a tree: each node's `render_annotated` (a try/except for the
error's line), each nodelist's list comprehension and `"".join`, `mark_safe` at each level.
For an email that is rendered once per recipient that machinery costs more than the work.
`build_plan` walks the parsed tree once per template version and keeps, per nodelist, a
tuple of steps:

- a text node (or several in a row) is a constant string;
- a variable, `{% for %}`, `{% if %}`, `{% with %}` and `{% autoescape %}` are run here, by
  steps that do what the sandbox's nodes do (sandbox.BudgetForNode, sandbox.tags._CountedVariableNode)
  and Django's IfNode / WithNode / AutoEscapeControlNode do, in the same order, over the same
  `Context` (pushed and popped at the same points, so `{% cycle … as x %}` or `{% regroup %}`
  below them set their names in the same scope);
- `{% comment %}` is nothing;
- any other node (cycle, firstof, now, regroup, spaceless, filter, ifchanged, widthratio,
  templatetag, verbatim, …) is rendered by Django itself, `node.render_annotated(context)`.

Every step appends to one output list, joined once at the end. The budget is kept as the
nodes keep it: each loop iteration ticks the deadline and counts what its body produced (the
length of what the body appended, which is the length Django's join would have had), each
variable counts its output, the guarded filters count theirs.

Errors carry the line as in Django's debug mode: the innermost node an exception passes
through gives `template_debug` (from its token), which `sandbox.engine._line_of` and
`rendering._line_in` read. A step's exception is annotated by the block running it, only on
the error path.
"""

from __future__ import annotations

import html
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from django.template import Context, Node
from django.template.base import TextNode, VariableDoesNotExist, render_value_in_context
from django.template.defaulttags import AutoEscapeControlNode, CommentNode, IfNode, WithNode
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from campaigns.content.errors import TemplateProblem

if TYPE_CHECKING:
    from django.template.base import Template

    from campaigns.content.sandbox.budget import _Budget

# A step appends what it renders to `out`; a block is a tuple of constant strings and steps.
Step = Callable[[Context, list[str], "_Budget"], None]
Block = tuple["str | Step", ...]


MISSING = object()


def lookup(lookups: tuple[str, ...], context: Context) -> Any:
    """A dotted variable over the frozen context the way Django's Variable._resolve_lookup
    finds it when every step is a key of a mapping and no value on the way is callable, which
    is how plain data is looked up; anything else (a missing key, a list index, a callable
    such as Lazy) is MISSING and left to Django's own lookup."""
    first = lookups[0]
    for scope in reversed(context.dicts):
        if first in scope:
            current = scope[first]
            break
    else:
        return MISSING
    if callable(current):
        return MISSING
    for bit in lookups[1:]:
        kind = type(current)
        if (kind is MappingProxyType or kind is dict) and bit in current:
            current = current[bit]
            if callable(current):
                return MISSING
        else:
            return MISSING
    return current


def unpack_problem(wanted: int, got: int) -> TemplateProblem:
    """`{% for a, b in x %}` over an item that has not two values (the node and the plan)."""
    return TemplateProblem(
        ngettext(
            "The loop needs %(wanted)d value to unpack, the item has %(got)d.",
            "The loop needs %(wanted)d values to unpack, the item has %(got)d.",
            wanted,
        )
        % {"wanted": wanted, "got": got}
    )


def count_iteration(loop_dict: dict[str, Any], i: int, len_values: int) -> None:
    """`forloop`'s counters for iteration i of len_values, as Django's ForNode sets them (the
    plan's loop and sandbox.BudgetForNode, which renders loops under a tag left to Django)."""
    loop_dict["counter0"] = i
    loop_dict["counter"] = i + 1
    loop_dict["revcounter"] = len_values - i
    loop_dict["revcounter0"] = len_values - i - 1
    loop_dict["first"] = i == 0
    loop_dict["last"] = i == len_values - 1


def unpacked(loopvars: tuple[str, ...], item: Any) -> dict[str, Any]:
    """`{% for a, b in pairs %}`: the item's values by loop variable, as Django's ForNode unpacks them."""
    try:
        len_item = len(item)
    except TypeError:
        len_item = 1
    if len(loopvars) != len_item:
        raise unpack_problem(len(loopvars), len_item)
    return dict(zip(loopvars, item, strict=True))


def loop_values(sequence: Any, context: Context) -> Any:
    """What `{% for %}` iterates over, as Django's ForNode resolves it: nothing for a missing
    value, a list for an iterable without a length."""
    values = sequence.resolve(context, ignore_failures=True)
    if values is None:
        return []
    return values if hasattr(values, "__len__") else list(values)


def _run(block: Block, context: Context, out: list[str], budget: _Budget) -> None:
    step: Any = None
    try:
        for step in block:
            if step.__class__ is str:
                out.append(step)
            else:
                step(context, out, budget)
    except Exception as error:
        # `step` is the one that raised (a constant never does): name its node, as Django's
        # Node.render_annotated does, unless a node further in was named already.
        _annotate(error, step.__self__.node, context)
        raise


def _annotate(error: Exception, node: Node, context: Context) -> None:
    # Django's Node.render_annotated (debug engines), on the error path only.
    culprit: Any = error
    if not hasattr(culprit, "_culprit_node"):
        culprit._culprit_node = node
    template: Any = context.render_context.template
    if not hasattr(culprit, "template_debug") and template.origin == culprit._culprit_node.origin:
        culprit.template_debug = template.get_exception_info(error, culprit._culprit_node.token)


class _Step(ABC):
    """A node run by the plan; the block holds the bound `run` (its `__self__.node` names the
    node when an error needs its line)."""

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node

    @abstractmethod
    def run(self, context: Context, out: list[str], budget: _Budget) -> None:
        """Append what the node renders to `out`."""


class _Variable(_Step):
    """sandbox.tags._CountedVariableNode.render, with its _FastFilterExpression.resolve, in one
    function: this is the step of most nodes of every email, and each call saved is ~10 % of
    its cost. The output is appended instead of returned (so not wrapped in SafeString: the
    wrapper is gone once joined)."""

    __slots__ = ("apply_filters", "filtered", "first", "resolve", "rest")

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        expression = node.filter_expression
        self.resolve = expression.resolve
        self.apply_filters = expression.apply_filters
        self.filtered = bool(expression.filters)
        # `contact.first_name` is ("contact", ("first_name",)); a literal or a translated
        # string has no lookups (first is None): the expression resolves it.
        lookups = expression.lookups
        self.first = lookups[0] if lookups else None
        self.rest = tuple(lookups[1:]) if lookups else ()

    def run(self, context: Context, out: list[str], budget: _Budget) -> None:
        # lookup(), written out.
        output: Any = MISSING
        first = self.first
        if first is not None:
            for scope in reversed(context.dicts):
                if first in scope:
                    output = scope[first]
                    break
            if callable(output):
                output = MISSING
            elif output is not MISSING:
                for bit in self.rest:
                    kind = output.__class__
                    if (kind is MappingProxyType or kind is dict) and bit in output:
                        output = output[bit]
                        if callable(output):
                            output = MISSING
                            break
                    else:
                        output = MISSING
                        break
        try:
            if output is MISSING:
                output = self.resolve(context)  # Django's own lookup (a list index, a Lazy, …)
            elif self.filtered:
                output = self.apply_filters(output, context)
        except UnicodeDecodeError:
            return  # as Django's VariableNode: "" (and nothing counted)
        kind = output.__class__
        if kind is str:
            # html.escape's result, without its five replace() calls when nothing is replaced.
            if context.autoescape and (
                "&" in output or "<" in output or ">" in output or '"' in output or "'" in output
            ):
                output = html.escape(output)
        elif kind is not SafeString:
            output = render_value_in_context(output, context)
        budget.spend(len(output))
        out.append(output)


class _For(_Step):
    """sandbox.BudgetForNode.render: the deadline ticked on each iteration, each iteration's
    output counted, the same scopes pushed."""

    __slots__ = ("body", "empty", "is_reversed", "loopvar", "loopvars", "sequence")

    def __init__(self, node: Any, body: Block, empty: Block) -> None:
        super().__init__(node)
        self.sequence = node.sequence
        self.loopvars = tuple(node.loopvars)
        self.loopvar = node.loopvars[0]
        self.is_reversed = node.is_reversed
        self.body = body
        self.empty = empty

    def run(self, context: Context, out: list[str], budget: _Budget) -> None:
        # `context["forloop"] if "forloop" in context else {}`, in one pass over the scopes.
        parentloop: Any = {}
        for scope in reversed(context.dicts):
            if "forloop" in scope:
                parentloop = scope["forloop"]
                break
        context.push()
        values = loop_values(self.sequence, context)
        len_values = len(values)
        if len_values < 1:
            _run(self.empty, context, out, budget)
            context.pop()
            return
        if self.is_reversed:
            values = reversed(values)
        loopvars = self.loopvars
        unpack = len(loopvars) > 1
        loopvar = self.loopvar
        body = self.body
        scope = context.dicts[-1]
        loop_dict = scope["forloop"] = {"parentloop": parentloop}
        for i, item in enumerate(values):
            budget.tick()
            count_iteration(loop_dict, i, len_values)
            if unpack:
                context.update(unpacked(loopvars, item))
            else:
                scope[loopvar] = item
            start = len(out)
            _run(body, context, out, budget)
            if unpack:
                context.pop()
            budget.spend(sum(map(len, out[start:])))
        context.pop()


class _If(_Step):
    """Django's IfNode.render: the first branch whose condition holds (a condition that
    cannot be looked up is false)."""

    __slots__ = ("branches",)

    def __init__(self, node: Any, branches: tuple[tuple[Any, Block], ...]) -> None:
        super().__init__(node)
        self.branches = branches

    def run(self, context: Context, out: list[str], budget: _Budget) -> None:
        for condition, block in self.branches:
            if condition is not None:
                try:
                    match = condition.eval(context)
                except VariableDoesNotExist:
                    match = None
            else:
                match = True
            if match:
                _run(block, context, out, budget)
                return


class _With(_Step):
    """Django's WithNode.render: the values resolved in the outer scope, then pushed."""

    __slots__ = ("body", "extra")

    def __init__(self, node: Any, body: Block) -> None:
        super().__init__(node)
        self.extra = tuple(node.extra_context.items())
        self.body = body

    def run(self, context: Context, out: list[str], budget: _Budget) -> None:
        values = {key: value.resolve(context) for key, value in self.extra}
        context.push(**values)
        _run(self.body, context, out, budget)
        context.pop()


class _AutoEscape(_Step):
    """Django's AutoEscapeControlNode.render."""

    __slots__ = ("body", "setting")

    def __init__(self, node: Any, body: Block) -> None:
        super().__init__(node)
        self.setting = node.setting
        self.body = body

    def run(self, context: Context, out: list[str], budget: _Budget) -> None:
        old_setting = context.autoescape
        context.autoescape = self.setting
        _run(self.body, context, out, budget)
        context.autoescape = old_setting


class _Fallback(_Step):
    """Any other node, rendered by Django as it always was (its subtree included)."""

    __slots__ = ()

    def run(self, context: Context, out: list[str], budget: _Budget) -> None:
        rendered: Any = self.node.render_annotated(context)
        out.append(rendered)


class Plan:
    """A template's render plan; `render` stands for `template.render(context)`."""

    __slots__ = ("block", "template")

    def __init__(self, template: Template, block: Block) -> None:
        self.template = template
        self.block = block

    def render(self, context: Context, budget: _Budget) -> SafeString:
        # What Template.render sets up around its nodelist (render_context.push_state and
        # bind_template), done directly: the context is new and is dropped after this render.
        template = self.template
        context.render_context.template = template
        context.render_context.push()
        context.template = template
        context.template_name = template.name
        out: list[str] = []
        _run(self.block, context, out, budget)
        return SafeString("".join(out))


def build_plan(template: Template, *, variable_node: type, for_node: type) -> Plan:
    """The plan of a parsed sandbox template. `variable_node` and `for_node` are the sandbox's
    node classes that the plan runs itself; nodes of any other class (Django's plain ones
    included) are left to Django."""

    def block(nodelist: Any) -> Block:
        steps: list[Any] = []
        node: Any
        for node in nodelist:
            kind = type(node)
            if kind is TextNode:
                # Texts in a row (a comment dropped between them) are one constant.
                if node.s:
                    if steps and type(steps[-1]) is str:
                        steps[-1] += node.s
                    else:
                        steps.append(node.s)
                continue
            if kind is CommentNode:
                continue  # renders ""
            step: _Step
            if kind is variable_node:
                step = _Variable(node)
            elif kind is for_node:
                step = _For(node, block(node.nodelist_loop), block(node.nodelist_empty))
            elif kind is IfNode:
                branches = tuple((condition, block(nodelist)) for condition, nodelist in node.conditions_nodelists)
                step = _If(node, branches)
            elif kind is WithNode:
                step = _With(node, block(node.nodelist))
            elif kind is AutoEscapeControlNode:
                step = _AutoEscape(node, block(node.nodelist))
            else:
                step = _Fallback(node)
            steps.append(step.run)
        return tuple(steps)

    return Plan(template, block(template.nodelist))
