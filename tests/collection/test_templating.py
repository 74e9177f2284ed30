import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collection import templating
from collection.templating import TaskFields, TemplateError

MMLU = TaskFields(
    input_fields=("question",), max_options=4, required=("question",), options_answered_by_letter=True
)
INPUTS = {"question": "What is 2 + 2?"}
OPTIONS = ["3", "4", "5", "22"]


def check(text: str, fields: TaskFields = MMLU) -> templating.Validation:
    return templating.validate(text, fields, max_chars=4000)


def test_it_renders_the_study_placeholders():
    text = "Q: {question}\nA. {choiceA} B. {choiceB} C. {choiceC} D. {choiceD}\nAnswer:"
    assert check(text).ok
    assert templating.render(text, INPUTS, OPTIONS) == "Q: What is 2 + 2?\nA. 3 B. 4 C. 5 D. 22\nAnswer:"


@pytest.mark.parametrize(
    "placeholder, expected",
    [
        ("{options}", "A. 3\nB. 4\nC. 5\nD. 22"),
        ("{options:letters}", "A. 3\nB. 4\nC. 5\nD. 22"),
        ("{options:parens}", "(A) 3\n(B) 4\n(C) 5\n(D) 22"),
        ("{options:bullets}", "- 3\n- 4\n- 5\n- 22"),
        ("{options:numbers}", "1. 3\n2. 4\n3. 5\n4. 22"),
        ("{options_}", "\nA. 3\nB. 4\nC. 5\nD. 22"),
    ],
)
def test_it_lists_options_in_each_documented_style(placeholder, expected):
    assert templating.render("{question}" + placeholder, INPUTS, OPTIONS) == "What is 2 + 2?" + expected


def test_doubled_braces_are_literal_braces():
    assert templating.render("{{json}} {question}", INPUTS, OPTIONS) == "{json} What is 2 + 2?"


def test_a_missing_choice_renders_empty_for_instances_with_fewer_options():
    assert templating.render("{question} {choiceD}|", INPUTS, ["yes", "no"]) == "What is 2 + 2? |"


def test_it_names_an_unknown_placeholder_and_suggests_the_close_one():
    result = check("{questoin} {options}")
    assert not result.ok
    assert "Unknown placeholder {questoin}. Did you mean {question}?" in result.errors[0]


def test_it_requires_the_question():
    result = check("Pick one: {options}")
    assert result.errors == ["The phrasing must contain {question}: without it the model never sees it."]


def test_it_refuses_empty_and_over_long_text():
    assert "empty" in check("   \n").errors[0]
    assert "limit is 4,000" in check("{question}" + "x" * 4000).errors[0]


def test_it_warns_when_a_letter_task_shows_no_options():
    result = check("Answer this: {question}")
    assert result.ok
    assert "shows no options" in result.warnings[0]


@pytest.mark.parametrize(
    "payload",
    [
        "{question.__class__}",
        "{question.__class__.__mro__[1].__subclasses__()}",
        "{question[0]}",
        "{question!r}",
        "{question:>10}",
        "{__import__('os').system('id')}",
        "{{ question.__class__ }}x{question.__init__.__globals__}",
        "{% for x in () %}{question}{% endfor %}",
        "{0}",
        "{}",
        "{ question }",
    ],
)
def test_server_side_template_injection_never_reaches_python(payload):
    result = check(payload + " {question}")
    assert not result.ok
    assert any("not a placeholder" in e or "only {options} takes a style" in e for e in result.errors)
    with pytest.raises(TemplateError):
        templating.render(payload, INPUTS, OPTIONS)


def test_a_jinja_style_expression_in_doubled_braces_stays_literal_text():
    text = "{{ question.__class__ }} {question}"
    assert check(text).ok
    assert templating.render(text, INPUTS, OPTIONS) == "{ question.__class__ } What is 2 + 2?"


def test_an_unmatched_brace_says_how_to_write_a_literal_one():
    result = check("{question} costs {5")
    assert result.errors == ["Unmatched '{' at character 18. Write '{{' for a literal brace."]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text_either_validates_and_renders_or_is_refused_with_a_message(text):
    result = check(text)
    if result.ok:
        rendered = templating.render(text, INPUTS, OPTIONS)
        assert isinstance(rendered, str)
    else:
        assert result.errors and all(isinstance(e, str) and e for e in result.errors)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="{}abcquestion:_.[]()!0", max_size=60))
def test_brace_heavy_text_never_raises_anything_but_messages(text):
    check(text)


@pytest.mark.parametrize(
    ("template", "shared"),
    [
        ("Answer the question.\n\nQuestion: {question}", "Answer the question.\n\nQuestion:"),
        ("Answer the question.\n{question}", "Answer the question."),
        ("Question:{question}", ""),
        ("{question} Answer:", ""),
        ("Solve {{this}} now {question}", "Solve {this} now"),
    ],
)
def test_render_parts_splits_off_the_text_every_instance_shares(template, shared):
    inputs = {"question": "Is 4 even?"}
    got_shared, rest = templating.render_parts(template, inputs)
    assert got_shared == shared
    assert got_shared + rest == templating.render(template, inputs)


@pytest.mark.parametrize("control", ["\u202e", "\u202d", "\u2066", "\u2069"])
def test_invisible_direction_controls_are_refused_by_name(control):
    """Shown, they reorder what a curator reads ('neve {rebmun} sI'), while the model reads stored order."""
    result = check(f"{control}Answer the question{control} {{question}} {{options}}")
    assert not result.ok
    assert f"text-direction controls (U+{ord(control):04X})" in result.errors[0]
    # Right-to-left text itself is welcome.
    assert check("أجب عن السؤال: {question} {options}").ok
