"""The soft prompt's loss chart: Total stays visible when it equals CE (λ_kl = λ_rep = 0)."""

from __future__ import annotations

from types import SimpleNamespace

from evaluation.views.softprompts import _curve_chart


def test_total_is_drawn_last_dashed_and_listed_first():
    curve = [{"step": s, "loss": 1.0 / s, "ce": 1.0 / s, "kl": 0.0, "rep": 0.0} for s in (1, 2, 3)]
    data = _curve_chart(SimpleNamespace(curve=curve))["data"]
    total = data[-1]
    assert total["name"] == "Total" and total["line"]["dash"] == "dash" and total["legendrank"] == 1
    assert [t["name"] for t in data[:-1]] == ["CE", "KL", "1 − cos"]
