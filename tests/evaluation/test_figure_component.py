"""One way to show a figure (issue 29): the value, a space, its interval, the chance badge and the definition
as a tooltip, from evaluation/templatetags/figures.py, whatever shape the page holds the figure in."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from evaluation.stats import figure_registry


def render(source: str, **context) -> str:
    return Template("{% load figures %}" + source).render(Context(context))


FIGURES = {
    "avgp": 0.525,
    "std": 0.04,
    "spread": None,
    "chance": 0.5,
    "min_phrasings": 3,
    "ci": {"avgp": [0.439, 0.607], "std": [0.01, 0.07]},
}


def test_a_stored_figure_shows_value_space_interval_and_definition():
    html = render('{% show_figure f "avgp" %}', f=FIGURES)
    assert '<span class="value">52.5</span> <span class="ci">[43.9, 60.7]</span>' in html
    assert figure_registry.get("avgp").definition in html


def test_an_avgp_interval_reaching_chance_is_flagged_and_one_above_it_is_not():
    assert "not above chance" in render('{% show_figure f "avgp" %}', f=FIGURES)
    above = {**FIGURES, "ci": {"avgp": [0.51, 0.6]}}
    assert "not above chance" not in render('{% show_figure f "avgp" %}', f=above)
    # Only mean accuracies are compared with chance: a Std of 4 points is not "below chance".
    assert "not above chance" not in render('{% show_figure f "std" %}', f=FIGURES)


def test_a_spread_figure_without_enough_phrasings_says_why():
    html = render('{% show_figure f "spread" %}', f=FIGURES)
    assert ">n/a<" in html and "Needs at least 3 phrasings" in html


def test_one_phrasings_accuracy_carries_its_interval_and_the_chance_level():
    html = render("{% show_accuracy a ci chance %}", a=0.53, ci=(0.40, 0.65), chance=0.5)
    assert '<span class="value">53.0%</span> <span class="ci">[40.0, 65.0]</span>' in html
    assert "not above chance" in html and "Chance level 50.0%" in html
    html = render("{% show_accuracy a ci chance %}", a=0.9, ci=(0.8, 0.95), chance=0.5)
    assert "not above chance" not in html


def test_a_difference_is_signed_with_its_interval_and_a_mark_when_it_excludes_zero():
    html = render('{% show_difference d ci "pp" True "avgp" %}', d=0.021, ci=(0.004, 0.04))
    assert '<span class="value">+2.1 pp</span> <span class="ci">[+0.4, +4.0]</span>' in html
    assert "excludes 0" in html
    html = render('{% show_difference d ci "pp" False %}', d=-0.004, ci=(-0.02, 0.01))
    assert "−0.4 pp" in html and "excludes 0" not in html


def test_headings_carry_the_definition_and_unit():
    html = render('{% figure_heading "gap" %}')
    assert html.startswith('<th class="num" title="Observed minus Unobserved AvgP')
    assert "in percentage points" in html and ">Gap</th>" in html


def test_text_is_escaped():
    html = render("{% show_accuracy a definition=d %}", a=0.5, d='<script>"x"</script>')
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("model", ["TaskSummary", "BenchmarkSummary"])
def test_the_admin_names_summaries_in_the_plural(model):
    from evaluation import models

    assert str(getattr(models, model)._meta.verbose_name_plural).endswith("summaries")
