"""Template checks and rendering, without I/O: what a tenant may write, what
each refusal says, and what each channel renders."""

import random
import string
from typing import Any

import pytest
from markupsafe import Markup

from server.domain.errors import ClarionError, ErrorKind
from server.domain.templates import (
    MAX_FIELD_SOURCE_LENGTH,
    MAX_SUBJECT_LENGTH,
    TemplateError,
    extract_variables,
    render_channel,
    to_whatsapp_positional,
    validate_template,
    whatsapp_parameters,
)

GUIDE: dict[str, dict[str, str]] = {
    "email": {
        "subject": "Order {{order_id}} confirmed",
        "body": "Hi {{name}} ...",
        "html_body": "<p>Hi {{name}} ...</p>",
    },
    "sms": {"body": "Hi {{name}}, order {{order_id}} confirmed"},
    "slack": {"body": "*{{service}}* alert: severity {{severity}}"},
    "voice": {"body": "Hello {{name}}. Your order {{order_id}} is confirmed."},
    "whatsapp": {"body": "Hi {{name}}, your order {{order_id}} is confirmed.", "language": "en_US"},
}
DATA: dict[str, Any] = {"name": "Ada", "order_id": "A-17", "service": "api", "severity": "high"}


def refusal_on_create(contents: dict[str, dict[str, str]]) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        validate_template(contents)
    return caught.value


def refusal_on_render(channel: str, fields: dict[str, str], data: dict[str, Any]) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render_channel(channel, fields, data)
    return caught.value


def refusal_on_render_at(
    data_path: str, channel: str, fields: dict[str, str], data: dict[str, Any]
) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render_channel(channel, fields, data, data_path=data_path)
    return caught.value


def sms(body: str) -> dict[str, dict[str, str]]:
    return {"sms": {"body": body}}


# -- variables --------------------------------------------------------------


def test_template_variables_are_the_sorted_union_across_channels_and_fields() -> None:
    assert validate_template(GUIDE) == ["name", "order_id", "service", "severity"]


def test_extract_variables_reads_outputs_filters_and_conditions() -> None:
    source = "{% if vip and not muted %}{{ name | default('there') | title }}{% endif %}{{ b }}"
    assert extract_variables(source) == {"vip", "muted", "name", "b"}


def test_extract_variables_of_plain_text_is_empty() -> None:
    assert extract_variables("No placeholders here") == frozenset()


# -- rendering --------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        (
            "email",
            {
                "subject": "Order A-17 confirmed",
                "body": "Hi Ada ...",
                "html_body": "<p>Hi Ada ...</p>",
            },
        ),
        ("sms", {"body": "Hi Ada, order A-17 confirmed"}),
        ("slack", {"body": "*api* alert: severity high"}),
        ("voice", {"body": "Hello Ada. Your order A-17 is confirmed."}),
        ("whatsapp", {"body": "Hi Ada, your order A-17 is confirmed.", "language": "en_US"}),
    ],
)
def test_each_channel_renders_its_fields(channel: str, expected: dict[str, str]) -> None:
    assert render_channel(channel, GUIDE[channel], DATA) == expected


def test_slack_data_cannot_mention_or_link_but_the_template_can() -> None:
    rendered = render_channel(
        "slack",
        {"body": "<!here> {{name}} & {{name | upper}}"},
        {"name": "<!channel> <@U0001> <https://evil.example|bank> & co"},
    )
    escaped = "&lt;!channel&gt; &lt;@U0001&gt; &lt;https://evil.example|bank&gt; &amp; co"
    shouted = "&lt;!CHANNEL&gt; &lt;@U0001&gt; &lt;HTTPS://EVIL.EXAMPLE|BANK&gt; &amp; CO"
    assert rendered == {"body": f"<!here> {escaped} & {shouted}"}
    # Other text channels pass data through as written.
    assert render_channel("sms", {"body": "{{name}}"}, {"name": "<b>&"}) == {"body": "<b>&"}


def test_html_body_is_autoescaped_and_text_fields_are_not() -> None:
    rendered = render_channel("email", GUIDE["email"], {"name": "<b>Ada</b> & co", "order_id": 1})
    assert rendered["html_body"] == "<p>Hi &lt;b&gt;Ada&lt;/b&gt; &amp; co ...</p>"
    assert rendered["body"] == "Hi <b>Ada</b> & co ..."
    sms_text = render_channel("sms", GUIDE["sms"], {"name": "<b>", "order_id": "&"})
    assert sms_text["body"] == "Hi <b>, order & confirmed"


def test_markup_values_are_still_escaped_in_html_body() -> None:
    rendered = render_channel("email", GUIDE["email"], {"name": Markup("<i>x</i>"), "order_id": 1})
    assert rendered["html_body"] == "<p>Hi &lt;i&gt;x&lt;/i&gt; ...</p>"


def test_missing_data_names_every_missing_key_and_the_channel() -> None:
    error = refusal_on_render("sms", GUIDE["sms"], {})
    assert error.code == "TEMPLATE_VARIABLE_MISMATCH"
    assert error.message == "missing data for channel sms: name, order_id"
    assert error.missing == ["name", "order_id"]
    assert error.channel == "sms"
    assert error.violations[0].field == "notification.data"


def test_missing_data_check_covers_every_field_of_the_channel() -> None:
    fields = {"subject": "{{ subject_key }}", "body": "{{ body_key }}", "html_body": "{{ html }}"}
    error = refusal_on_render("email", fields, {"body_key": "x"})
    assert error.missing == ["html", "subject_key"]
    assert "channel email" in error.message


def test_extra_data_keys_are_allowed_whatever_their_type() -> None:
    data = DATA | {"unused": "x", "nested": {"a": [1, 2]}, "list": [1]}
    assert render_channel("sms", GUIDE["sms"], data) == {"body": "Hi Ada, order A-17 confirmed"}


@pytest.mark.parametrize(
    ("value", "text"),
    [(42, "42"), (42.0, "42"), (-3.0, "-3"), (19.99, "19.99"), (0, "0"), (True, "true")],
)
def test_numbers_and_booleans_render_as_in_json(value: object, text: str) -> None:
    assert render_channel("sms", sms("n={{ n }}")["sms"], {"n": value}) == {"body": f"n={text}"}


def test_used_variable_with_an_object_or_array_value_is_refused() -> None:
    error = refusal_on_render("sms", {"body": "Hi {{ name }}"}, {"name": {"first": "Ada"}})
    assert error.code == "TEMPLATE_DATA_INVALID"
    assert "'name'" in error.message and "an object" in error.message
    error = refusal_on_render("sms", {"body": "Hi {{ name }}"}, {"name": ["Ada"]})
    assert "an array" in error.message


def test_default_filter_makes_a_variable_optional() -> None:
    fields = {"body": "Hi {{ nick | default('there') }}!"}
    assert validate_template({"sms": fields}) == ["nick"]
    assert render_channel("sms", fields, {}) == {"body": "Hi there!"}
    assert render_channel("sms", fields, {"nick": "Ada"}) == {"body": "Hi Ada!"}


def test_null_value_counts_as_absent() -> None:
    assert render_channel("sms", {"body": "Hi {{ n | default('you') }}"}, {"n": None}) == {
        "body": "Hi you"
    }
    error = refusal_on_render("sms", {"body": "Hi {{ n }}"}, {"n": None})
    assert error.missing == ["n"]


def test_filters_from_the_allow_list_apply() -> None:
    fields = {
        "body": "{{ a | upper }} {{ b | lower }} {{ c | title }} {{ d | capitalize }}"
        "|{{ e | trim }}|"
    }
    data = {"a": "ab", "b": "CD", "c": "ada lovelace", "d": "hello WORLD", "e": "  x  "}
    assert render_channel("sms", fields, data) == {"body": "AB cd Ada Lovelace Hello world|x|"}


def test_if_conditions_on_names_choose_the_branch() -> None:
    fields = {"body": "{% if vip and not muted %}VIP {% elif muted %}quiet {% else %}{% endif %}hi"}
    assert render_channel("sms", fields, {"vip": True, "muted": False}) == {"body": "VIP hi"}
    assert render_channel("sms", fields, {"vip": True, "muted": True}) == {"body": "quiet hi"}
    assert render_channel("sms", fields, {"vip": False, "muted": False}) == {"body": "hi"}


def test_variables_in_conditions_are_required() -> None:
    error = refusal_on_render("sms", {"body": "{% if vip %}VIP{% endif %} hi"}, {})
    assert error.missing == ["vip"]


def test_string_literals_write_literal_braces_in_text_channels() -> None:
    fields = {"body": '{{ "{{" }}name{{ "}}" }} is {{ name }}'}
    assert render_channel("sms", fields, {"name": "Ada"}) == {"body": "{{name}} is Ada"}


def test_text_and_trailing_newlines_are_kept_exactly() -> None:
    fields = {"body": "Line 1\n  {{ a }}\n\n"}
    assert render_channel("sms", fields, {"a": "x"}) == {"body": "Line 1\n  x\n\n"}


def test_data_is_never_interpreted_as_template_text() -> None:
    value = "{{ secret }} {% if x %}{% endif %} {{ ''.__class__ }}"
    assert render_channel("sms", {"body": "{{ a }}"}, {"a": value}) == {"body": value}


def test_body_that_renders_blank_is_refused() -> None:
    error = refusal_on_render("sms", {"body": "{{ a }}"}, {"a": "  "})
    assert error.code == "BODY_REQUIRED"


def test_property_random_safe_names_render_back_exactly() -> None:
    keywords = {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "self"}
    rng = random.Random(20240611)
    alphabet = string.printable + "éü中{}%#<>&"
    for _ in range(200):
        names: set[str] = set()
        while len(names) < rng.randint(1, 6):
            name = rng.choice(string.ascii_letters) + "".join(
                rng.choice(string.ascii_letters + string.digits + "_")
                for _ in range(rng.randint(0, 12))
            )
            if name.lower() not in keywords:
                names.add(name)
        ordered = sorted(names)
        data = {
            n: "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))) for n in ordered
        }
        body = "|".join(f"{{{{ {n} }}}}" for n in ordered)
        assert validate_template(sms(body)) == ordered
        assert render_channel("sms", {"body": body}, data) == {
            "body": "|".join(data[n] for n in ordered)
        }


# -- refusals at create time ------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("Hi {{ user.name }}", "attribute access"),
        ("Hi {{ user['name'] }}", "item access"),
        ("{{ ''.__class__ }}", "attribute access"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "function and method calls"),
        ("{{ x.__class__ }}", "attribute access"),
        ("{{ range(10) }}", "function and method calls"),
        ("{{ x() }}", "function and method calls"),
        ("{{ lipsum() }}", "function and method calls"),
        ("{{ cycler }}{{ joiner() }}", "function and method calls"),
        ("{% for i in items %}{{ i }}{% endfor %}", "loops"),
        ("{% set a = 'x' %}{{ a }}", "{% set %}"),
        ("{% set a %}x{% endset %}", "{% set %}"),
        ("{% macro m() %}x{% endmacro %}", "macros"),
        ("{% call m() %}x{% endcall %}", "{% call %}"),
        ("{% include 'other' %}", "{% include %}"),
        ("{% import 'other' as o %}", "{% import %}"),
        ("{% from 'other' import m %}", "{% from ... import %}"),
        ("{% extends 'base' %}", "{% extends %}"),
        ("{% block b %}x{% endblock %}", "{% block %}"),
        ("{% with a = 1 %}{% endwith %}", "{% with %}"),
        ("{% filter upper %}x{% endfilter %}", "{% filter %}"),
        ("{% autoescape false %}{{ x }}{% endautoescape %}", "{% autoescape %}"),
        ("{{ 1 if x else 2 }}", "inline conditions"),
        ("{{ x is defined }}", "tests"),
        ("{{ a ~ b }}", "expressions other than a variable name"),
        ("{{ a + 1 }}", "expressions other than a variable name"),
        ("{{ [a, b] }}", "expressions other than a variable name"),
        ("{{ x | safe }}", "the filter 'safe'"),
        ("{{ x | attr('__class__') }}", "the filter 'attr'"),
        ("{{ x | format(y) }}", "the filter 'format'"),
        ("{{ x | map('upper') }}", "the filter 'map'"),
        ("{{ x | upper(1) }}", "takes 0 literal argument(s)"),
        ("{{ x | default(y) }}", "must be literal values"),
        ("{{ x | default(d='a') }}", "by position"),
        ("{{ 'abc' | upper }}", "expressions other than a variable name"),
        ("{{ true }}", "non-string literal"),
        ("{% if x == 1 %}a{% endif %}", "not allowed in a condition"),
        ("{% if x.y %}a{% endif %}", "not allowed in a condition"),
        ("{{ __builtins__ }}", "variable names start with a letter"),
        ("{{ self }}", "'self' is reserved"),
    ],
)
def test_constructs_outside_the_allow_list_are_refused(source: str, fragment: str) -> None:
    error = refusal_on_create(sms(f"line one\n{source}"))
    assert error.code == "TEMPLATE_INVALID"
    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert fragment in error.message
    assert error.message.startswith("sms.body on line 2: ")
    assert (error.channel, error.field) == ("sms", "body")


def test_refusals_in_email_name_the_field() -> None:
    contents = {"email": {"subject": "Hi", "body": "ok", "html_body": "<p>{{ u.name }}</p>"}}
    error = refusal_on_create(contents)
    assert error.message.startswith("email.html_body on line 1: not allowed: attribute access")
    assert error.violations[0].field == "channels.email.html_body"


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("Hello\n\n{{ name }", 3, "unexpected '}'"),
        # An unclosed block is reported on the line that opens it.
        ("Hi\n{% if x %}\nopen", 2, "Unexpected end of template"),
        ("Hi {% endif %}", 1, "Encountered unknown tag 'endif'"),
        ("Hi\n{% do x %}", 2, "Encountered unknown tag 'do'"),
    ],
)
def test_syntax_errors_name_the_line_and_the_reason(source: str, line: int, reason: str) -> None:
    error = refusal_on_create(sms(source))
    assert error.code == "TEMPLATE_INVALID"
    assert error.message.startswith(f"sms.body has a syntax error on line {line}: ")
    assert reason in error.message


@pytest.mark.parametrize("source", ["Hi {{1}}", "{{ 2 }} and {{ name }}", "{{ 1.5 }}"])
def test_numbered_placeholders_are_refused(source: str) -> None:
    for contents in (sms(source), {"whatsapp": {"body": source, "language": "en"}}):
        error = refusal_on_create(contents)
        assert error.code == "TEMPLATE_INVALID"
        assert "numbered placeholder" in error.message


def test_deeply_nested_templates_are_refused_not_crashed() -> None:
    sources = [
        "{{ " + "(" * 3000 + "x" + ")" * 3000 + " }}",
        "{% if a %}" * 9 + "x" + "{% endif %}" * 9,
        "{{ x" + " | upper" * 9 + " }}",
        "{% if " + " and ".join(f"v{i}" for i in range(40)) + " %}x{% endif %}",
    ]
    for source in sources:
        assert refusal_on_create(sms(source)).code == "TEMPLATE_INVALID"


def test_render_checks_the_template_too() -> None:
    error = refusal_on_render("sms", {"body": "{{ ''.__class__ }}"}, {})
    assert error.code == "TEMPLATE_INVALID"


# -- channels and fields ----------------------------------------------------


def test_unknown_channel_is_refused_listing_the_channels() -> None:
    error = refusal_on_create({"fax": {"body": "x"}})
    assert error.message == (
        "unknown channel 'fax'; use one of: email, sms, slack, voice, whatsapp"
    )


def test_template_without_channels_is_refused() -> None:
    assert refusal_on_create({}).code == "TEMPLATE_INVALID"


def test_unknown_field_is_refused_listing_the_fields() -> None:
    error = refusal_on_create({"email": {"subject": "s", "body": "b", "html": "<p>"}})
    assert error.message == "email has no field 'html'; its fields are: subject, body, html_body"


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ({"email": {"body": "b"}}, "email.subject is required"),
        ({"email": {"subject": "s"}}, "email.body is required"),
        ({"sms": {}}, "sms.body is required"),
        ({"sms": {"body": "  "}}, "sms.body is empty"),
        ({"whatsapp": {"body": "Hi"}}, "whatsapp.language is required"),
    ],
)
def test_required_fields_must_be_given(contents: dict[str, dict[str, str]], message: str) -> None:
    assert refusal_on_create(contents).message == message


def test_html_body_is_optional() -> None:
    assert validate_template({"email": {"subject": "s", "body": "{{ a }}"}}) == ["a"]


@pytest.mark.parametrize("language", ["en", "en_US", "pt_BR", "fil", "zh_CN"])
def test_whatsapp_language_codes_are_accepted(language: str) -> None:
    assert validate_template({"whatsapp": {"body": "Hi", "language": language}}) == []


@pytest.mark.parametrize("language", ["EN", "en-US", "en_us", "english", "e", "{{ lang }}", ""])
def test_whatsapp_language_must_look_like_a_language_code(language: str) -> None:
    error = refusal_on_create({"whatsapp": {"body": "Hi", "language": language}})
    assert error.code == "TEMPLATE_INVALID"
    assert error.field == "language"


def test_template_error_is_a_clarion_invalid_argument() -> None:
    error = refusal_on_create(sms("{{ x.y }}"))
    assert isinstance(error, ClarionError)
    assert error.reason == error.code == "TEMPLATE_INVALID"
    assert error.violations[0].field == "channels.sms.body"
    assert str(error).startswith("TEMPLATE_INVALID: sms.body on line 1")


# -- lengths ----------------------------------------------------------------


def test_fixed_text_within_the_limit_is_accepted() -> None:
    assert validate_template(sms("a" * 1600)) == []


def test_fixed_text_over_the_limit_is_refused() -> None:
    error = refusal_on_create(sms("a" * 1601))
    assert error.code == "BODY_TOO_LONG"
    assert error.message == "sms.body has 1601 characters of text; sms allows at most 1600"


def test_fixed_part_alone_over_the_limit_is_refused() -> None:
    error = refusal_on_create({"voice": {"body": "{{ name }}" + "a" * 3001}})
    assert error.code == "BODY_TOO_LONG"
    assert "3001 characters of fixed text; voice allows at most 3000" in error.message


def test_fixed_part_counts_the_shortest_branch() -> None:
    long = "a" * 2000
    assert validate_template(sms(f"{{% if x %}}{long}{{% else %}}short{{% endif %}}")) == ["x"]
    error = refusal_on_create(sms(f"{{% if x %}}{long}{{% else %}}{long}{{% endif %}}"))
    assert error.code == "BODY_TOO_LONG"


@pytest.mark.parametrize(
    ("channel", "limit"), [("sms", 1600), ("slack", 40_000), ("voice", 3000), ("whatsapp", 1024)]
)
def test_rendered_body_over_the_channel_limit_is_refused(channel: str, limit: int) -> None:
    fields = {"body": "x{{ a }}"} | ({"language": "en"} if channel == "whatsapp" else {})
    assert render_channel(channel, fields, {"a": "a" * (limit - 1)})["body"] == "x" + "a" * (
        limit - 1
    )
    error = refusal_on_render(channel, fields, {"a": "a" * limit})
    assert error.code == "BODY_TOO_LONG"
    assert error.message == (
        f"{channel} body has {limit + 1} characters after rendering with notification.data; "
        f"{channel} allows at most {limit}"
    )


def test_email_body_and_html_body_limits_apply_after_rendering() -> None:
    fields = {"subject": "s", "body": "{{ a }}", "html_body": "<p>{{ b }}</p>"}
    assert refusal_on_render("email", fields, {"a": "x" * 100_001, "b": "y"}).field == "body"
    # Escaping counts: 20,000 "&" become 100,000 characters of "&amp;".
    error = refusal_on_render("email", fields, {"a": "x", "b": "&" * 20_000})
    assert (error.code, error.field) == ("BODY_TOO_LONG", "html_body")


def test_huge_rendered_output_is_abandoned_early() -> None:
    body = "{{ a }}" * 1000
    error = refusal_on_render("sms", {"body": body}, {"a": "x" * 100_000})
    assert error.code == "BODY_TOO_LONG"
    assert "more than 3200 characters" in error.message


def test_template_field_source_is_capped() -> None:
    error = refusal_on_create(
        {"email": {"subject": "s", "body": "{{ a }}" + "x" * MAX_FIELD_SOURCE_LENGTH}}
    )
    assert error.code == "TEMPLATE_TOO_LARGE"
    assert error.field == "body"


def test_subject_limit_applies_to_fixed_and_rendered_text() -> None:
    error = refusal_on_create({"email": {"subject": "s" * 999, "body": "b"}})
    assert error.code == "SUBJECT_TOO_LONG"
    fields = {"subject": "{{ s }}", "body": "b"}
    error = refusal_on_render("email", fields, {"s": "s" * (MAX_SUBJECT_LENGTH + 1)})
    assert (error.code, error.field) == ("SUBJECT_TOO_LONG", "subject")


def test_subject_is_one_line() -> None:
    error = refusal_on_create({"email": {"subject": "Hi\nthere", "body": "b"}})
    assert "line break" in error.message
    fields = {"subject": "Re: {{ s }}", "body": "b"}
    rendered = render_channel("email", fields, {"s": "a\r\nBcc: x@example.com"})
    assert rendered["subject"] == "Re: a Bcc: x@example.com"


# -- WhatsApp ---------------------------------------------------------------


def test_whatsapp_positional_numbers_names_in_order_of_first_appearance() -> None:
    body = "Hi {{ name }}, order {{order_id}} for {{name}} ships {{ date }}."
    assert to_whatsapp_positional(body) == (
        "Hi {{1}}, order {{2}} for {{1}} ships {{3}}.",
        ["name", "order_id", "date"],
    )


def test_whatsapp_positional_of_fixed_text_has_no_parameters() -> None:
    assert to_whatsapp_positional("Your code is ready") == ("Your code is ready", [])


def test_whatsapp_parameters_follow_the_names_order_with_json_formatting() -> None:
    _, names = to_whatsapp_positional("{{ b }} {{ a }} {{ c }} {{ b }}")
    data = {"a": 42.0, "b": "Ada", "c": True, "extra": "x"}
    assert whatsapp_parameters(names, data) == ["Ada", "42", "true"]


def test_whatsapp_parameters_and_rendered_body_agree() -> None:
    fields = GUIDE["whatsapp"]
    meta_body, names = to_whatsapp_positional(fields["body"])
    params = whatsapp_parameters(names, {"name": "Ada", "order_id": 17.0})
    rendered = render_channel("whatsapp", fields, {"name": "Ada", "order_id": 17.0})
    expected = meta_body
    for number, value in enumerate(params, start=1):
        expected = expected.replace(f"{{{{{number}}}}}", value)
    assert rendered["body"] == expected == "Hi Ada, your order 17 is confirmed."


def test_whatsapp_parameters_name_every_missing_key() -> None:
    with pytest.raises(TemplateError) as caught:
        whatsapp_parameters(["name", "order_id", "date"], {"order_id": 1})
    assert caught.value.message == "missing data for channel whatsapp: date, name"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("  ", "is empty"),
        ("a\nb", "line break"),
        ("a\tb", "tab"),
        ("a     b", "more than four spaces"),
    ],
)
def test_whatsapp_parameters_meta_refuses_are_refused(value: str, problem: str) -> None:
    with pytest.raises(TemplateError) as caught:
        whatsapp_parameters(["name"], {"name": value})
    assert caught.value.code == "TEMPLATE_DATA_INVALID"
    assert problem in caught.value.message
    assert caught.value.violations[0].field == "notification.data.name"


def test_render_errors_name_the_callers_data_path() -> None:
    error = refusal_on_render_at("data", "sms", GUIDE["sms"], {"name": "Ada"})
    assert error.violations[0].field == "data"
    with pytest.raises(TemplateError) as caught:
        whatsapp_parameters(["name"], {"name": ""}, data_path="data")
    assert caught.value.violations[0].field == "data.name"


def test_whatsapp_render_checks_parameters_too() -> None:
    fields = {"body": "Hi {{ name }}, welcome", "language": "en"}
    assert refusal_on_render("whatsapp", fields, {"name": "a\nb"}).code == "TEMPLATE_DATA_INVALID"


@pytest.mark.parametrize(
    "body",
    [
        "Hi {{ name | upper }}",
        "Hi {{ name | default('you') }}",
        "Hi {% if vip %}VIP{% endif %}",
        'Hi {{ "there" }}',
    ],
)
def test_whatsapp_body_takes_only_text_and_plain_names(body: str) -> None:
    error = refusal_on_create({"whatsapp": {"body": body, "language": "en"}})
    assert error.code == "TEMPLATE_INVALID"
    assert "Meta approves a fixed text" in error.message


def test_whatsapp_body_cannot_smuggle_positional_braces() -> None:
    body = "Hi {% raw %}{{1}}{% endraw %} {{ name }}"
    error = refusal_on_create({"whatsapp": {"body": body, "language": "en"}})
    assert "which Meta would read as a placeholder" in error.message


def test_whatsapp_limit_counts_the_meta_text_with_numbered_placeholders() -> None:
    # 1020 characters of text plus "{{1}}" is 1025 as Meta sees it.
    body = "a" * 1020 + "{{ x }}"
    error = refusal_on_create({"whatsapp": {"body": body, "language": "en"}})
    assert error.code == "BODY_TOO_LONG"
    assert "1025 characters" in error.message
    assert validate_template({"whatsapp": {"body": "a" * 1019 + "{{ x }}", "language": "en"}})
