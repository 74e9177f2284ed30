"""Formats: how a phrasing's answer options are laid out, as an axis of its own beside the wording.

FormatSpread (Sclar et al., ICLR 2024) and DOVE (Habba et al., ACL 2025) show that the layout of the same
prompt (the enumerator before each option, what separates the options, their order) moves accuracy as much
as the wording does. A format here is three of those factors:
- enumerator: "A." (letters), "(A)" (parens), "A)" (closing). Only letter enumerators: on a task answered
  by letter the model answers "A", "B"..., which a numbered or bulleted list would leave without a referent;
- separator: one option per line, or all on one line separated by "; ";
- order: as given, reversed, or shuffled (seeded by the format and the instance's stable id, so every
  database shuffles alike). The gold answer follows its option: scoring maps every answer back to the
  option it names, so predictions, log-likelihoods and gold stay in the instance's own option order.

A format applies to a phrasing whose template lists the options with `{options}` (unstyled) or `{options_}`
and names no single option (`{choiceA}`) and no style of its own (`{options:parens}`): the others fix their
layout in their text, and keep it. The answer cue is part of the wording (the phrasing's text), so it is
not varied here. Pure Python, no Django, like templating.py.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from collection import templating

ENUMERATORS = {"letters": "{}. ", "parens": "({}) ", "closing": "{}) "}
SEPARATORS = {"lines": "\n", "inline": "; "}
ORDERS = ("given", "reversed", "shuffled")


@dataclass(frozen=True)
class OptionFormat:
    enumerator: str
    separator: str
    order: str

    def __post_init__(self) -> None:
        if self.enumerator not in ENUMERATORS or self.separator not in SEPARATORS or self.order not in ORDERS:
            raise ValueError(f"Unknown format {self.enumerator}/{self.separator}/{self.order}.")

    @property
    def key(self) -> str:
        return f"{self.enumerator}-{self.separator}-{self.order}"

    @property
    def short(self) -> str:
        """A column heading: "(A) lines rev"."""
        example = ENUMERATORS[self.enumerator].format("A").strip()
        return f"{example} {self.separator} {self.order[:3]}"

    @property
    def label(self) -> str:
        example = ENUMERATORS[self.enumerator].format("A").strip()
        where = "one per line" if self.separator == "lines" else "on one line"
        return f"{example} {where}, {self.order}"


# The format a formattable template is written in: `{options}` renders "A. x" lines in the given order.
AS_WRITTEN = OptionFormat("letters", "lines", "given")

# The declared formats every formattable phrasing is crossed with, besides AS_WRITTEN: six, chosen so that
# every level of every factor appears and no two factors move together (each pair of levels of two factors
# appears at least once across the seven), which is what lets the decomposition tell them apart.
DECLARED: tuple[OptionFormat, ...] = (
    OptionFormat("parens", "lines", "reversed"),
    OptionFormat("closing", "lines", "shuffled"),
    OptionFormat("letters", "inline", "reversed"),
    OptionFormat("parens", "inline", "shuffled"),
    OptionFormat("closing", "inline", "given"),
    OptionFormat("letters", "lines", "shuffled"),
)
ALL: tuple[OptionFormat, ...] = (AS_WRITTEN, *DECLARED)
BY_KEY = {f.key: f for f in ALL}


def formattable(template: str) -> bool:
    """Whether a template leaves its options' layout to the format: an unstyled `{options}` or `{options_}`,
    and no single option or styled listing that fixes it."""
    placeholders = [p for p in templating.parse(template) if isinstance(p, templating.Placeholder)]
    listings = [p for p in placeholders if p.name in templating.OPTION_LISTINGS]
    fixed = any(p.name in templating.CHOICE_FIELDS or p.style for p in placeholders if p not in listings)
    return bool(listings) and not fixed and not any(p.style for p in listings)


def order(fmt: OptionFormat, count: int, instance_key: str) -> list[int]:
    """The options' order under the format: order[position] = index of the option shown there."""
    positions = list(range(count))
    if fmt.order == "reversed":
        positions.reverse()
    elif fmt.order == "shuffled":
        seed = hashlib.sha256(f"{fmt.key}\x1f{instance_key}".encode()).hexdigest()
        random.Random(int(seed[:16], 16)).shuffle(positions)
    return positions


def listing(fmt: OptionFormat, options: Sequence[str]) -> str:
    """The options (already in the format's order) laid out with its enumerator and separator."""
    marker = ENUMERATORS[fmt.enumerator]
    return SEPARATORS[fmt.separator].join(
        marker.format(templating.LETTERS[i]) + text for i, text in enumerate(options)
    )


def render_parts(
    template: str, inputs: dict[str, str], options: Sequence[str], fmt: OptionFormat, positions: Sequence[int]
) -> tuple[str, str]:
    """templating.render_parts with the options shown in `positions` order and laid out in the format:
    (shared, rest). The shared text is the template's literal lead, the same in every format."""
    shown = [options[i] for i in positions]
    full = templating.render(template, inputs, shown, listing=listing(fmt, shown))
    cut = len(templating.render_parts(template, inputs, shown)[0])
    return full[:cut], full[cut:]
