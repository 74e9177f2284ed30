"""The Alpaca input marker is written by the importer (collection) and read by the prompt wrapper (the ML
core, which may not import the apps): both must spell it the same."""

from collection.importers.instructions import ALPACA_INPUT
from evaluation.ml import prompts


def test_the_importer_writes_the_marker_the_wrapper_reads():
    assert ALPACA_INPUT == prompts.ALPACA_INPUT
    shared, rest = prompts.wrap("Pick one." + ALPACA_INPUT, "{x}", "alpaca")
    assert shared.startswith(prompts.ALPACA_INPUT_HEADER)
