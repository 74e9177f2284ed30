"""Cell colours for accuracies: the viridis scale, and a text colour readable on it. Plain functions, so the
page queries (selectors) and the template filters (templatetags/figures.py) colour cells alike."""

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


def heat(value) -> str:
    """A background colour for an accuracy cell on the viridis scale (dark purple at 0, yellow at 1)."""
    if value is None:
        return "#f4f6f9"
    r, g, b = _viridis(value)
    return f"rgb({r}, {g}, {b})"


def heat_text(value) -> str:
    """White on the dark end of the scale, dark on the light end (by the background's relative luminance)."""
    if value is None:
        return "#1d2430"
    r, g, b = _viridis(value)
    return "#fff" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 140 else "#1d2430"
