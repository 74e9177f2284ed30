"""The answer without a click: the home and benchmark pages name the leaders, with intervals, once the
study's published results are imported; the leaderboard shows rank intervals and tie groups. At 1280 and
390 px, with screenshots."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from collection.demo import load_demo

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


@pytest.fixture
def published(shared_data, capsys):
    load_demo(generated_per_task=0)
    call_command("import_results", shared_data / "paper_results_csv" / "Main")
    capsys.readouterr()


def test_the_front_pages_name_the_leaders_at_both_widths(live_server, browser, screenshot, published):
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        errors = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{live_server.url}/")
        lines = tab.locator(".leaders p.leader")
        assert lines.count() == 4  # accuracy and robustness, on MMLU and BIG-bench Lite
        first = lines.first.inner_text()
        assert first.startswith("Accuracy (AvgP):") and "[" in first and "task" in first
        assert tab.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(tab, f"home-leaders-{width}")
        tab.goto(f"{live_server.url}/b/bigbench-lite/")
        assert "Robustness (Q10):" in tab.inner_text(".leaders")
        screenshot(tab, f"benchmark-leaders-{width}")
        tab.goto(f"{live_server.url}/b/bigbench-lite/leaderboard/")
        ranks = tab.locator("#board table.figures td.rank").all_inner_texts()
        assert ranks and ranks[0].startswith("1")
        assert tab.locator("#board tr[data-tie-group]").count() == len(ranks)
        assert "Rank" in tab.inner_text("#ranking-rule")
        screenshot(tab, f"leaderboard-ranks-{width}")
        assert errors == []
        context.close()
