"""Formatting of metric figures: percentages, percentage points and 95% intervals, in one place; the prose
about them (units, spread figures) from the figure registry."""

from django import template

from evaluation import figure_registry

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


# Viridis (matplotlib's perceptually uniform map) at nine evenly spaced points: equal steps in accuracy look
# like equal steps in colour, so 48% and 54% are told apart; the numbers are printed on the cells as well.
VIRIDIS = [
    (68, 1, 84),
    (72, 40, 120),
    (62, 73, 137),
    (49, 104, 142),
    (38, 130, 142),
    (31, 158, 137),
    (53, 183, 121),
    (110, 206, 88),
    (253, 231, 37),
]


def _viridis(value: float) -> tuple[int, int, int]:
    x = max(0.0, min(1.0, value)) * (len(VIRIDIS) - 1)
    low = min(int(x), len(VIRIDIS) - 2)
    t = x - low
    return tuple(round(a + (b - a) * t) for a, b in zip(VIRIDIS[low], VIRIDIS[low + 1]))


@register.filter
def heat(value) -> str:
    """A background colour for an accuracy cell on the viridis scale (dark purple at 0, yellow at 1)."""
    if value is None:
        return "#f4f6f9"
    r, g, b = _viridis(value)
    return f"rgb({r}, {g}, {b})"


@register.filter
def heat_text(value) -> str:
    """White on the dark end of the scale, dark on the light end (by the background's relative luminance)."""
    if value is None:
        return "#1d2430"
    r, g, b = _viridis(value)
    return "#fff" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 140 else "#1d2430"


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
