"""Formatting of metric figures: percentages, percentage points and 95% intervals, in one place; the prose
about them (units, spread figures) from the figure registry."""

from django import template
from django.utils.html import format_html

from evaluation.leaderboards import colours
from evaluation.stats import figure_registry

register = template.Library()


def _format(value, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value:.3f}"
    return f"{100 * value:.1f}"


def _too_few_phrasings(figures: dict, name: str) -> bool:
    return name in figure_registry.spread_names() and figures.get(name) is None and "min_phrasings" in figures


def _needs_instances(name: str) -> bool:
    """A figure of per-instance results (Consistency), which published results and estimates lack."""
    return any(f.name == name and f.needs == "instances" for f in figure_registry.FIGURES)


def _no_instances(figures: dict, name: str) -> bool:
    # Published results carry per-phrasing accuracies only: no per-instance data.
    return _needs_instances(name) and figures.get("ci_method") == "phrasings only"


@register.filter
def figure(figures: dict, spec: str) -> str:
    """{{ row.figures|figure:"avgp:pct" }}: the figure, "n/a" when it needs more phrasings than there are,
    or a dash when it is otherwise undefined."""
    name, _, unit = spec.partition(":")
    if _too_few_phrasings(figures, name):
        return "n/a"
    return _format(figures.get(name), unit or "pct")


@register.filter
def na_reason(figures: dict, spec: str) -> str:
    """Why a figure shows "n/a" (a tooltip), or nothing."""
    name = spec.partition(":")[0]
    if _no_instances(figures, name):
        return f"Published results have no per-instance data, so no {figure_registry.get(name).label}."
    if _needs_instances(name) and figures.get("estimated") and figures.get(name) is None:
        return f"Estimated figures have no {figure_registry.get(name).label}: it needs every cell of an instance."
    if _too_few_phrasings(figures, name):
        return f"Needs at least {figures['min_phrasings']} phrasings on a task; no task here has that many."
    return ""


def _and(labels: list[str]) -> str:
    return ", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else "".join(labels)


@register.simple_tag
def figure_units() -> str:
    """The tables' figures by unit, from the registry: "AvgP, Min, ... in percent; Std, Spread and Gap in
    percentage points; PDR as a fraction"."""
    by_unit: dict[str, list[str]] = {}
    for figure in figure_registry.columns():
        by_unit.setdefault(figure.unit, []).append(figure.label)
    return "; ".join(f"{_and(labels)} {figure_registry.UNIT_WORDS[unit]}" for unit, labels in by_unit.items())


@register.simple_tag
def spread_figure_labels() -> str:
    """The tables' spread figures (figure_registry.Figure.spread), as "Std, Min, ... and Consistency"."""
    return _and([figure.label for figure in figure_registry.columns() if figure.spread])


@register.filter
def interval(figures: dict, spec: str) -> str:
    """{{ row.figures|interval:"avgp:pct" }}: "[low, high]", or empty when there is no interval."""
    name, _, unit = spec.partition(":")
    bounds = (figures.get("ci") or {}).get(name)
    if not bounds:
        return ""
    return f"[{_format(bounds[0], unit)}, {_format(bounds[1], unit)}]"


# --- One way to show a figure -------------------------------------------------------------------------------
# Every figure on every page (leaderboard, task, model, phrasing, My phrasings, soft-prompt and compare pages)
# goes through _render: the value, a space, its 95% interval in brackets, a "not above chance" badge when the
# interval reaches the chance level, and a tooltip with the figure's definition (and why it is n/a). The tags
# below only gather those parts from the shapes the pages hold: a stored figures dict (show_figure), one
# phrasing's accuracy (show_accuracy) and a paired difference (show_difference). They build the markup with
# format_html rather than an inclusion template: a leaderboard renders one per cell, a hundred rows by fourteen
# figures, and an inclusion template costs a template context per cell.

# The figures that are mean accuracies, so that an interval reaching the chance level means the model does no
# better than guessing (common_ground.below_chance, the leaderboard's rule, reads AvgP too).
CHANCE_FIGURES = ("avgp",)
ACCURACY = "Accuracy of this phrasing over the task's evaluation sample."


def _title(parts) -> str:
    return " ".join(part for part in parts if part)


def _render(
    text: str, *, ci: str = "", title: str = "", below_chance: bool = False, chance=None, mark: str = ""
):
    chance_badge = ""
    if below_chance:
        chance_badge = format_html(
            ' <span class="badge warn chance" title="Its 95% interval reaches the chance level ({}): no better '
            'than answering at random, so its spread means little.">not above chance</span>',
            fig(chance, "pct"),
        )
    return format_html(
        '<span class="figure" title="{}"><span class="value">{}</span>{}{}{}</span>',
        title,
        text,
        format_html(' <span class="ci">{}</span>', ci) if ci else "",
        format_html(' <span class="mark">{}</span>', mark) if mark else "",
        chance_badge,
    )


def _signed_number(value, unit: str) -> str:
    """An interval's bound: signed, without the unit (the value before it carries the unit)."""
    return signed(value, unit).removesuffix(" pp")


def _reaches_chance(value, low, chance) -> bool:
    if value is None or chance is None:
        return False
    return (value if low is None else low) <= chance


def _definition(name: str) -> str:
    try:
        figure = figure_registry.get(name)
    except KeyError:
        return ""
    return f"{figure.label}: {figure.definition}"


@register.simple_tag
def show_figure(figures: dict, name: str, chance: bool = True):
    """{% show_figure row.figures "avgp" %}: a stored figure with its interval, the chance badge (AvgP) and
    its definition as the tooltip; "n/a" with the reason when it is undefined. Unit from the registry."""
    unit = figure_registry.get(name).unit
    value = figures.get(name)
    bounds = (figures.get("ci") or {}).get(name)
    ci = f"[{_format(bounds[0], unit)}, {_format(bounds[1], unit)}]" if bounds and value is not None else ""
    below = (
        chance
        and name in CHANCE_FIGURES
        and _reaches_chance(value, bounds[0] if bounds else None, figures.get("chance"))
    )
    return _render(
        figure(figures, name + ":" + unit),
        ci=ci,
        title=_title([_definition(name), "Brackets: 95% interval." if ci else "", na_reason(figures, name)]),
        below_chance=below,
        chance=figures.get("chance"),
    )


@register.simple_tag
def show_value(value, unit: str = "pct", name: str = ""):
    """{% show_value d.a unit key %}: a figure given as a plain number (a model's side of a comparison), with
    its unit and definition, and no interval."""
    return _render(fig(value, unit), title=_definition(name))


@register.simple_tag
def show_accuracy(value, ci=None, chance=None, estimated: bool = False, definition: str = ACCURACY):
    """{% show_accuracy r.accuracy s.ci s.chance %}: one phrasing's accuracy with its interval (a pair, or
    None) and the chance badge when the interval (or, without one, the value) reaches the chance level."""
    low = ci[0] if ci else None
    return _render(
        ("~" if estimated and value is not None else "") + fig(value, "pct"),
        ci=f"[{_format(ci[0], 'pct')}, {_format(ci[1], 'pct')}]" if ci and value is not None else "",
        title=_title(
            [
                definition,
                "An estimate: part of its cells are not scored yet." if estimated else "",
                "Brackets: 95% interval." if ci else "",
                f"Chance level {fig(chance, 'pct')}." if chance is not None else "",
            ]
        ),
        below_chance=_reaches_chance(value, low, chance),
        chance=chance,
    )


@register.simple_tag
def show_difference(difference, ci=None, unit: str = "pp", excludes_zero: bool = False, name: str = ""):
    """{% show_difference d.difference d.ci unit d.excludes_zero key %}: a paired difference (A − B, or a soft
    prompt's gain) with its sign, its 95% interval and a mark when the interval excludes 0."""
    return _render(
        signed(difference, unit),
        ci=f"[{_signed_number(ci[0], unit)}, {_signed_number(ci[1], unit)}]"
        if ci and difference is not None
        else "",
        title=_title(
            [
                _definition(name),
                "Difference with its 95% paired-bootstrap interval." if ci else "",
                "The interval excludes 0." if excludes_zero else "",
            ]
        ),
        mark="● excludes 0" if excludes_zero else "",
    )


@register.simple_tag
def figure_heading(name: str, label: str = ""):
    """<th> for a figure column: its label, its definition and unit as the tooltip."""
    figure = figure_registry.get(name)
    return format_html(
        '<th class="num" title="{} ({}).">{}</th>',
        figure.definition.rstrip("."),
        figure_registry.UNIT_WORDS[figure.unit],
        label or figure.label,
    )


heat = register.filter("heat", colours.heat)
heat_text = register.filter("heat_text", colours.heat_text)


@register.filter
def fig(value, unit: str = "pct") -> str:
    """{{ accuracy|fig:"pct" }} for one plain value, with its unit: "57.3%", "12.0 pp"."""
    text = _format(value, unit)
    if value is None or unit == "ratio":
        return text
    return text + ("%" if unit == "pct" else " pp")


@register.filter
def signed(value, unit: str = "pp") -> str:
    """A difference with its sign, in percentage points ("+2.1 pp", "−0.4 pp"), or as a ratio."""
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value:+.3f}".replace("-", "−")
    return f"{100 * value:+.1f} pp".replace("-", "−")


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key)
