"""Templates: per-channel content with `{{ name }}` placeholders, checked when a
tenant creates a template and rendered once per recipient.

What a template may contain is decided by walking the Jinja2 AST against an
allow-list, not by pattern matching:

- literal text;
- `{{ name }}`: a variable, optionally through filters from `ALLOWED_FILTERS`
  whose arguments are literals, e.g. `{{ name | default('there') | title }}`;
- `{{ "literal" }}`: a string literal, the way to write literal braces;
- `{% if name %}...{% elif other %}...{% else %}...{% endif %}` whose conditions
  are variable names combined with `not`, `and`, `or`.

Everything else is refused with the line and the construct: attribute and item
access, calls, operators, inline `a if b else c`, tests, loops, `{% set %}`,
macros, blocks, include/import/extends. Numbered placeholders such as `{{1}}`
are refused too: Clarion numbers WhatsApp parameters itself. WhatsApp bodies
take only text and bare `{{ name }}`, because Meta approves a fixed text.

Rendering uses a `SandboxedEnvironment` with `StrictUndefined`, no globals and
only the allowed filters, as defence in depth. `html_body` is autoescaped;
Slack data values have `&`, `<` and `>` escaped, as Slack asks, so data cannot
mention `@channel` or forge a link; every other field is plain text. Data
values are strings, numbers or booleans:
`true`/`false` render in lowercase as in JSON, and whole floats render without
`.0` because `google.protobuf.Struct` turns every JSON number into a float. A
null value counts as absent, so `default` applies to it.
"""

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment

from server.domain.channels import POLICIES, Channel
from server.domain.errors import ClarionError, ErrorKind, FieldViolation

# Longest template text accepted per field, in characters, before parsing.
MAX_FIELD_SOURCE_LENGTH: Final = 100_000
# RFC 5322 line limit; the same as raw sends (sending.MAX_SUBJECT_LENGTH).
MAX_SUBJECT_LENGTH: Final = 998
# A note for the tenant's team, never sent; long enough for a paragraph.
MAX_DESCRIPTION_LENGTH: Final = 1024
# Filters a template may use, with how many literal arguments each takes.
ALLOWED_FILTERS: Final[Mapping[str, tuple[int, int]]] = {
    "upper": (0, 0),
    "lower": (0, 0),
    "title": (0, 0),
    "capitalize": (0, 0),
    "trim": (0, 0),
    "default": (1, 2),
}
# Request paths in violations: template content is under CreateTemplateRequest.channels;
# data is a send's notification.data unless the caller names another (preview: "data").
CONTENT_PATH: Final = "channels"
DATA_PATH: Final = "notification.data"

# What a template_id may be, wherever one is given.
TEMPLATE_ID = re.compile(r"[a-z0-9_-]{1,64}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_MAX_FILTER_CHAIN = 8
_MAX_CONDITION_TERMS = 32
_MAX_IF_NESTING = 8
# Render output is collected up to this multiple of the field's limit, then abandoned.
_RENDER_OVERSHOOT = 2
_COMPILED_CACHE_SIZE = 512


@dataclass
class TemplateError(ClarionError):
    """A template or its data refused. `reason` (also `code`) is one of
    TEMPLATE_INVALID, TEMPLATE_TOO_LARGE, DESCRIPTION_TOO_LONG, BODY_TOO_LONG, SUBJECT_TOO_LONG,
    BODY_REQUIRED, TEMPLATE_VARIABLE_MISMATCH, TEMPLATE_DATA_INVALID.
    Violation paths are `channels.<channel>.<field>` for template content and
    the given data path (DATA_PATH by default) for data found at render."""

    channel: str | None = None
    field: str | None = None
    # Data keys the template needs and the send did not give, sorted.
    missing: list[str] = dataclasses.field(default_factory=list)

    @property
    def code(self) -> str:
        return self.reason


@dataclass(frozen=True)
class _FieldSpec:
    required: bool
    templated: bool
    # Longest rendered value, in characters, and the reason used when exceeded.
    limit: int
    too_long: str


def _body(channel: Channel) -> _FieldSpec:
    return _FieldSpec(True, True, POLICIES[channel].max_body_length, "BODY_TOO_LONG")


_FIELDS: Final[Mapping[Channel, Mapping[str, _FieldSpec]]] = {
    Channel.EMAIL: {
        "subject": _FieldSpec(True, True, MAX_SUBJECT_LENGTH, "SUBJECT_TOO_LONG"),
        "body": _body(Channel.EMAIL),
        # Gmail clips messages over 102 KB, so HTML gets the same limit as text.
        "html_body": dataclasses.replace(_body(Channel.EMAIL), required=False),
    },
    Channel.SMS: {"body": _body(Channel.SMS)},
    Channel.SLACK: {"body": _body(Channel.SLACK)},
    Channel.VOICE: {"body": _body(Channel.VOICE)},
    Channel.WHATSAPP: {
        "body": _body(Channel.WHATSAPP),
        "language": _FieldSpec(True, False, 0, ""),
    },
}

_HTML_FIELD = "html_body"


# -- analysis -------------------------------------------------------------


@dataclass(frozen=True)
class _Analysis:
    # Every variable the text names, from jinja2.meta.
    variables: frozenset[str]
    # Those that must be in the data: all but the ones only read through `default`.
    required: frozenset[str]
    # Shortest possible output: literal text on the shortest branch, empty variables.
    min_length: int
    # Only literal text and bare {{ name }}: what a WhatsApp body may hold.
    plain: bool
    # When plain: the text in order, as (is_variable, literal text or variable name).
    parts: tuple[tuple[bool, str], ...]
    # Literal text holds a line break.
    multiline: bool
    # Literal text holds `{{` or `}}`, which Meta would read as a placeholder.
    literal_braces: bool


class _Refusal(Exception):
    def __init__(self, lineno: int | None, reason: str, syntax: bool = False) -> None:
        super().__init__(reason)
        self.lineno = lineno
        self.reason = reason
        self.syntax = syntax


_ALLOWED_HINT = (
    "Templates may output variables as {{ name }}, with the filters "
    + ", ".join(ALLOWED_FILTERS)
    + ", and branch with {% if name %}...{% endif %}"
)

_CONSTRUCTS: Final[Mapping[type[nodes.Node], str]] = {
    nodes.Getattr: "attribute access such as {{ user.name }}",
    nodes.Getitem: "item access such as {{ user['name'] }}",
    nodes.Slice: "slices such as {{ name[1:] }}",
    nodes.Call: "function and method calls",
    nodes.CondExpr: "inline conditions (a if b else c); use {% if name %}...{% endif %}",
    nodes.Test: "tests such as {{ name is defined }}",
    nodes.For: "loops ({% for %})",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.Macro: "macros ({% macro %})",
    nodes.CallBlock: "{% call %} blocks",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.With: "{% with %}",
    nodes.FilterBlock: "{% filter %} blocks",
    nodes.Scope: "{% autoescape %} blocks",
    nodes.ScopedEvalContextModifier: "{% autoescape %} blocks",
}


def _construct(node: nodes.Node) -> str:
    known = _CONSTRUCTS.get(type(node))
    if known:
        return known
    if isinstance(node, nodes.Expr):
        return "expressions other than a variable name (operators, literals, lists...)"
    return f"the {type(node).__name__} statement"


def _not_allowed(node: nodes.Node, what: str | None = None) -> _Refusal:
    # Some wrapper nodes (Scope) carry no line; their first child does.
    lineno = node.lineno or next((child.lineno for child in node.iter_child_nodes()), None)
    return _Refusal(lineno, f"not allowed: {what or _construct(node)}. {_ALLOWED_HINT}")


class _Walker:
    def __init__(self) -> None:
        self.required: set[str] = set()
        self.names: set[str] = set()
        self.plain = True
        self.parts: list[tuple[bool, str]] = []
        self.literals: list[str] = []

    def statements(self, body: Iterable[nodes.Node], nesting: int) -> int:
        return sum(self.statement(node, nesting) for node in body)

    def statement(self, node: nodes.Node, nesting: int) -> int:
        if isinstance(node, nodes.Output):
            return sum(self.output(item) for item in node.nodes)
        if isinstance(node, nodes.If):
            if nesting >= _MAX_IF_NESTING:
                raise _Refusal(
                    node.lineno, f"{{% if %}} is nested more than {_MAX_IF_NESTING} deep"
                )
            self.plain = False
            branches = [node, *node.elif_]
            for branch in branches:
                self.condition(branch.test, [0])
            lengths = [self.statements(branch.body, nesting + 1) for branch in branches]
            return min([*lengths, self.statements(node.else_, nesting + 1)])
        raise _not_allowed(node)

    def output(self, node: nodes.Expr) -> int:
        if isinstance(node, nodes.TemplateData):
            self.parts.append((False, node.data))
            self.literals.append(node.data)
            return len(node.data)
        if isinstance(node, nodes.Name):
            self.name(node, required=True)
            self.parts.append((True, node.name))
            return 0
        if isinstance(node, nodes.Const):
            if isinstance(node.value, str):
                self.plain = False
                self.literals.append(node.value)
                return len(node.value)
            if isinstance(node.value, int | float) and not isinstance(node.value, bool):
                raise _Refusal(
                    node.lineno,
                    f"{{{{{node.value}}}}} is a numbered placeholder; name the variable "
                    "instead, e.g. {{ order_id }} (WhatsApp parameters are numbered for you)",
                )
            raise _not_allowed(node, f"the non-string literal {node.value!r}")
        self.plain = False
        self.expression(node, 0)
        return 0

    def expression(self, node: nodes.Node, chain: int) -> None:
        if isinstance(node, nodes.Name):
            self.name(node, required=True)
            return
        if not isinstance(node, nodes.Filter):
            raise _not_allowed(node)
        if node.name not in ALLOWED_FILTERS:
            raise _not_allowed(node, f"the filter {node.name!r}")
        if chain >= _MAX_FILTER_CHAIN:
            raise _Refusal(node.lineno, f"more than {_MAX_FILTER_CHAIN} filters in a row")
        low, high = ALLOWED_FILTERS[node.name]
        if node.kwargs or node.dyn_args or node.dyn_kwargs or not low <= len(node.args) <= high:
            count = f"{low}" if low == high else f"{low} to {high}"
            raise _Refusal(
                node.lineno,
                f"the filter {node.name!r} takes {count} literal argument(s), by position",
            )
        for arg in node.args:
            if not isinstance(arg, nodes.Const) or not isinstance(
                arg.value, str | int | float | bool
            ):
                raise _Refusal(
                    node.lineno, f"arguments of the filter {node.name!r} must be literal values"
                )
        if node.name == "default" and isinstance(node.node, nodes.Name):
            # StrictUndefined reaches `default` untouched, so the value may be absent.
            self.name(node.node, required=False)
            return
        if node.node is None:
            raise _not_allowed(node)
        self.expression(node.node, chain + 1)

    def condition(self, node: nodes.Node, terms: list[int]) -> None:
        terms[0] += 1
        if terms[0] > _MAX_CONDITION_TERMS:
            raise _Refusal(node.lineno, f"a condition has more than {_MAX_CONDITION_TERMS} terms")
        if isinstance(node, nodes.Name):
            self.name(node, required=True)
        elif isinstance(node, nodes.Not):
            self.condition(node.node, terms)
        elif isinstance(node, nodes.And | nodes.Or):
            self.condition(node.left, terms)
            self.condition(node.right, terms)
        else:
            raise _Refusal(
                node.lineno,
                f"not allowed in a condition: {_construct(node)}. Conditions test "
                "variable names with not, and, or: {% if name %}, {% if a and not b %}",
            )

    def name(self, node: nodes.Name, required: bool) -> None:
        if node.name.startswith("_"):
            raise _Refusal(node.lineno, f"{node.name!r}: variable names start with a letter")
        if node.name == "self":
            raise _Refusal(node.lineno, "'self' is reserved in templates; rename the variable")
        self.names.add(node.name)
        if required:
            self.required.add(node.name)


def _environment(
    autoescape: bool, finalize: Callable[[Any], Any] | None = None
) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        finalize=finalize or _finalize,
    )
    env.filters = {name: env.filters[name] for name in ALLOWED_FILTERS}
    env.tests = {}
    env.globals.clear()
    return env


def _finalize(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _slack_finalize(value: Any) -> Any:
    """Slack reads `<...>` as mentions (`<!channel>`, `<@U…>`) and links, and
    `&` as the start of an entity; its docs ask for these three escaped.
    Only data values are escaped: the template's own text may mention on purpose."""
    text = str(_finalize(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TEXT_ENV: Final = _environment(autoescape=False)
_HTML_ENV: Final = _environment(autoescape=True)
_SLACK_ENV: Final = _environment(autoescape=False, finalize=_slack_finalize)


@functools.lru_cache(maxsize=_COMPILED_CACHE_SIZE)
def _analyse(source: str) -> _Analysis:
    """Raises _Refusal for syntax errors and anything outside the allow-list."""
    try:
        tree = _TEXT_ENV.parse(source)
        walker = _Walker()
        min_length = walker.statements(tree.body, 0)
        variables = frozenset(meta.find_undeclared_variables(tree))
    except TemplateSyntaxError as exc:
        raise _Refusal(exc.lineno, exc.message or "invalid syntax", syntax=True) from None
    except RecursionError:
        raise _Refusal(None, "the template is nested too deeply") from None
    literals = "".join(walker.literals)
    return _Analysis(
        variables=variables,
        required=frozenset(walker.required),
        min_length=min_length,
        plain=walker.plain,
        parts=tuple(walker.parts),
        multiline="\n" in literals or "\r" in literals,
        literal_braces="{{" in literals or "}}" in literals,
    )


@functools.lru_cache(maxsize=_COMPILED_CACHE_SIZE)
def _compiled(source: str, env: str) -> Template:
    return {"html": _HTML_ENV, "slack": _SLACK_ENV, "text": _TEXT_ENV}[env].from_string(source)


# -- errors ---------------------------------------------------------------


def _error(
    code: str,
    message: str,
    *,
    channel: str | None = None,
    field: str | None = None,
    path: str | None = None,
    missing: Sequence[str] = (),
) -> TemplateError:
    if path is None:
        path = ".".join(p for p in (CONTENT_PATH, channel, field) if p)
    return TemplateError(
        ErrorKind.INVALID_ARGUMENT,
        code,
        message,
        [FieldViolation(path, message)],
        channel=channel,
        field=field,
        missing=list(missing),
    )


def _refused(
    refusal: _Refusal, where: str, channel: str | None, field: str | None
) -> TemplateError:
    line = f" on line {refusal.lineno}" if refusal.lineno else ""
    if refusal.syntax:
        message = f"{where} has a syntax error{line}: {refusal.reason}"
    else:
        message = f"{where}{line}: {refusal.reason}"
    return _error("TEMPLATE_INVALID", message, channel=channel, field=field)


# -- create time ----------------------------------------------------------


def extract_variables(source: str) -> frozenset[str]:
    """The variable names a piece of template text reads. Raises TemplateError
    (TEMPLATE_INVALID) if the text is not an allowed template."""
    if len(source) > MAX_FIELD_SOURCE_LENGTH:
        raise _error(
            "TEMPLATE_TOO_LARGE",
            f"template text has {len(source)} characters; at most {MAX_FIELD_SOURCE_LENGTH}",
        )
    try:
        return _analyse(source).variables
    except _Refusal as refusal:
        raise _refused(refusal, "template", None, None) from None


def check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise _error(
            "DESCRIPTION_TOO_LONG",
            f"description has {len(description)} characters; at most {MAX_DESCRIPTION_LENGTH}",
            path="description",
        )


def validate_template(contents: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Checks a template's content for every channel; returns its variables,
    sorted. Raises TemplateError naming the channel, the field and the fix."""
    if not contents:
        raise _error(
            "TEMPLATE_INVALID",
            "a template needs content for at least one channel: " + _channel_list(),
            path=CONTENT_PATH,
        )
    variables: set[str] = set()
    for name, fields in contents.items():
        variables |= _check_channel(_channel(name), fields)[0]
    return sorted(variables)


def _channel_list() -> str:
    return ", ".join(c.value for c in Channel)


def _channel(name: str) -> Channel:
    try:
        return Channel(name)
    except ValueError:
        raise _error(
            "TEMPLATE_INVALID",
            f"unknown channel {name!r}; use one of: {_channel_list()}",
            path=f"{CONTENT_PATH}.{name}",
        ) from None


def _check_channel(
    channel: Channel, fields: Mapping[str, str]
) -> tuple[frozenset[str], frozenset[str], dict[str, _Analysis]]:
    """(variables, required variables, analysis per templated field)."""
    specs = _FIELDS[channel]
    c = channel.value
    if not isinstance(fields, Mapping):
        raise _error(
            "TEMPLATE_INVALID",
            f"{c} content must be an object with the fields: {', '.join(specs)}",
            channel=c,
        )
    for field in fields:
        if field not in specs:
            raise _error(
                "TEMPLATE_INVALID",
                f"{c} has no field {field!r}; its fields are: {', '.join(specs)}",
                channel=c,
                field=str(field),
            )
    analyses: dict[str, _Analysis] = {}
    for field, spec in specs.items():
        source = fields.get(field)
        if source is None:
            if spec.required:
                raise _error("TEMPLATE_INVALID", f"{c}.{field} is required", channel=c, field=field)
            continue
        if not isinstance(source, str):
            raise _error(
                "TEMPLATE_INVALID", f"{c}.{field} must be a string", channel=c, field=field
            )
        if spec.required and not source.strip():
            raise _error("TEMPLATE_INVALID", f"{c}.{field} is empty", channel=c, field=field)
        if spec.templated:
            analyses[field] = _check_field(channel, field, source, spec)
    if channel is Channel.WHATSAPP and not _LANGUAGE.fullmatch(fields["language"]):
        raise _error(
            "TEMPLATE_INVALID",
            f"whatsapp.language {fields['language']!r} is not a language code such as en or en_US",
            channel=c,
            field="language",
        )
    variables = frozenset().union(*(a.variables for a in analyses.values()))
    required = frozenset().union(*(a.required for a in analyses.values()))
    return variables, required, analyses


def _check_field(channel: Channel, field: str, source: str, spec: _FieldSpec) -> _Analysis:
    c, where = channel.value, f"{channel.value}.{field}"
    if len(source) > MAX_FIELD_SOURCE_LENGTH:
        raise _error(
            "TEMPLATE_TOO_LARGE",
            f"{where} has {len(source)} characters; a template field may have at most "
            f"{MAX_FIELD_SOURCE_LENGTH}",
            channel=c,
            field=field,
        )
    try:
        analysis = _analyse(source)
    except _Refusal as refusal:
        raise _refused(refusal, where, c, field) from None
    fixed = analysis.min_length
    if channel is Channel.WHATSAPP:
        if not analysis.plain:
            raise _error(
                "TEMPLATE_INVALID",
                f"{where} may only hold text and {{{{ name }}}} placeholders: Meta approves "
                "a fixed text, so filters, {% if %} and literals are not available on whatsapp",
                channel=c,
                field=field,
            )
        if analysis.literal_braces:
            raise _error(
                "TEMPLATE_INVALID",
                f"{where} holds literal '{{{{' or '}}}}', which Meta would read as a "
                "placeholder; remove them",
                channel=c,
                field=field,
            )
        fixed = len(_positional(analysis)[0])
    if field == "subject" and analysis.multiline:
        raise _error(
            "TEMPLATE_INVALID",
            f"{where} holds a line break; a subject is one line",
            channel=c,
            field=field,
        )
    if fixed > spec.limit:
        what = (
            "as a Meta template with numbered placeholders"
            if channel is Channel.WHATSAPP
            else ("of fixed text" if analysis.variables else "of text")
        )
        raise _error(
            spec.too_long,
            f"{where} has {fixed} characters {what}; {c} allows at most {spec.limit}",
            channel=c,
            field=field,
        )
    return analysis


# -- render time ----------------------------------------------------------


def render_channel(
    channel: str,
    fields: Mapping[str, str],
    data: Mapping[str, Any],
    *,
    data_path: str = DATA_PATH,
) -> dict[str, str]:
    """Renders one channel's content for one recipient; returns every field,
    rendered (whatsapp's language as given). Raises TemplateError: all missing
    data keys at once (TEMPLATE_VARIABLE_MISMATCH), values that are not
    strings, numbers or booleans, or output over the channel's limits."""
    ch = _channel(channel)
    variables, required, analyses = _check_channel(ch, fields)
    c = ch.value
    context = _context(c, set(variables), required, data, data_path)
    rendered: dict[str, str] = {}
    for field, source in fields.items():
        spec = _FIELDS[ch][field]
        rendered[field] = (
            _render_field(ch, field, source, spec, context, data_path) if spec.templated else source
        )
    if ch is Channel.WHATSAPP:
        whatsapp_parameters(_positional(analyses["body"])[1], data, data_path=data_path)
    return rendered


def _context(
    channel: str,
    names: set[str],
    required: frozenset[str],
    data: Mapping[str, Any],
    data_path: str,
) -> dict[str, str | int | float | bool]:
    given = {name: data[name] for name in names if data.get(name) is not None}
    missing = sorted(required - given.keys())
    if missing:
        raise _error(
            "TEMPLATE_VARIABLE_MISMATCH",
            f"missing data for channel {channel}: {', '.join(missing)}",
            channel=channel,
            path=data_path,
            missing=missing,
        )
    return {name: _scalar(channel, name, value, data_path) for name, value in sorted(given.items())}


def _scalar(channel: str, name: str, value: Any, data_path: str) -> str | int | float | bool:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, str):
        # Plain str: a Markup value must not skip escaping in html_body.
        return str.__str__(value)
    kind = (
        "an object"
        if isinstance(value, Mapping)
        else "an array"
        if isinstance(value, list | tuple)
        else type(value).__name__
    )
    raise _error(
        "TEMPLATE_DATA_INVALID",
        f"data {name!r} for channel {channel} is {kind}; "
        "template variables take strings, numbers or booleans",
        channel=channel,
        path=f"{data_path}.{name}",
    )


def _text(value: str | int | float | bool) -> str:
    """A data value as rendered text; the same as {{ name }} renders it."""
    return str(_finalize(value))


def _render_field(
    channel: Channel,
    field: str,
    source: str,
    spec: _FieldSpec,
    context: Mapping[str, str | int | float | bool],
    data_path: str,
) -> str:
    c, where = channel.value, f"{channel.value} {field}"
    # Stop collecting well past the limit, so that huge values cannot exhaust memory.
    ceiling = spec.limit * _RENDER_OVERSHOOT
    chunks: list[str] = []
    size = 0
    try:
        env = "html" if field == _HTML_FIELD else "slack" if channel is Channel.SLACK else "text"
        for chunk in _compiled(source, env).generate(context):
            size += len(chunk)
            if size > ceiling:
                break
            chunks.append(chunk)
    except JinjaTemplateError as exc:
        raise _error(
            "TEMPLATE_INVALID",
            f"{where} could not be rendered: {exc}",
            channel=c,
            field=field,
            path=data_path,
        ) from None
    text = "".join(chunks)
    if field == "subject":
        text = " ".join(text.splitlines())
    if size > ceiling or len(text) > spec.limit:
        length = f"more than {ceiling}" if size > ceiling else str(len(text))
        raise _error(
            spec.too_long,
            f"{where} has {length} characters after rendering with {data_path}; "
            f"{c} allows at most {spec.limit}",
            channel=c,
            field=field,
            path=data_path,
        )
    if field == "body" and not text.strip():
        raise _error(
            "BODY_REQUIRED",
            f"{where} is empty after rendering with {data_path}",
            channel=c,
            field=field,
            path=data_path,
        )
    return text


# -- WhatsApp -------------------------------------------------------------


def _positional(analysis: _Analysis) -> tuple[str, list[str]]:
    names: list[str] = []
    text: list[str] = []
    for is_variable, value in analysis.parts:
        if not is_variable:
            text.append(value)
            continue
        if value not in names:
            names.append(value)
        text.append(f"{{{{{names.index(value) + 1}}}}}")
    return "".join(text), names


def to_whatsapp_positional(body: str) -> tuple[str, list[str]]:
    """A whatsapp body as Meta's template text, with `{{1}}`, `{{2}}`... in
    order of first appearance (a name used twice keeps its number), and the
    variable names in parameter order."""
    analysis = _check_field(Channel.WHATSAPP, "body", body, _FIELDS[Channel.WHATSAPP]["body"])
    return _positional(analysis)


_CONSECUTIVE_SPACES = re.compile(r" {5,}")


def whatsapp_parameters(
    names: Sequence[str], data: Mapping[str, Any], *, data_path: str = DATA_PATH
) -> list[str]:
    """The body parameter values, in the order of `names` (from
    to_whatsapp_positional). Meta refuses empty parameters, and ones with line
    breaks, tabs or more than four spaces in a row; so does this."""
    c = Channel.WHATSAPP.value
    context = _context(c, set(names), frozenset(names), data, data_path)
    values = [_text(context[name]) for name in names]
    for name, value in zip(names, values, strict=True):
        problem = None
        if not value.strip():
            problem = "is empty"
        elif "\n" in value or "\r" in value or "\t" in value:
            problem = "holds a line break or tab"
        elif _CONSECUTIVE_SPACES.search(value):
            problem = "holds more than four spaces in a row"
        if problem:
            raise _error(
                "TEMPLATE_DATA_INVALID",
                f"data {name!r} for channel {c} {problem}, which WhatsApp does not accept "
                "in a template parameter",
                channel=c,
                path=f"{data_path}.{name}",
            )
    return values
