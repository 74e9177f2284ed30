"""Batch calibration as evaluation/softprompt_outcome.py computes it from stored option log-likelihoods."""

from __future__ import annotations

import numpy as np

from evaluation.softprompt_outcome import _calibrated


def test_batch_calibration_removes_a_phrasing_s_bias_towards_one_option():
    # The phrasing pushes every instance towards option 0 by 3 nats; underneath, the model knows the answer
    # (the gold option gets +1). Plain argmax always says 0; calibrated, it finds the gold option.
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, size=40)
    cells = {}
    for i, g in enumerate(gold):
        logliks = np.array([3.0, 0.0]) + np.eye(2)[g] + rng.normal(0, 0.1, 2)
        cells[i] = (logliks.tolist(), bool(np.argmax(logliks) == g), int(g))
    plain = np.mean([c[1] for c in cells.values()])
    calibrated = np.mean(_calibrated(cells, list(cells)))
    assert plain == np.mean(gold == 0)
    assert calibrated == 1.0


def test_batch_calibration_leaves_an_unbiased_phrasing_as_it_was():
    rng = np.random.default_rng(1)
    cells = {}
    for i in range(60):
        g = i % 3
        logliks = np.eye(3)[g] * 2 + rng.normal(0, 0.3, 3)
        cells[i] = (logliks.tolist(), bool(np.argmax(logliks) == g), g)
    assert _calibrated(cells, list(cells)) == [c[1] for c in cells.values()]
