"""Agreement between phrasings with no labels: Fleiss' kappa of their predicted options over instances, the
unsupervised criterion the consistency objective's early stopping reads (softprompt.py). Kappa discounts the
agreement expected by chance, so a prompt that makes every phrasing give one answer to everything (the
collapse that agreement training risks) scores 0, not 1."""

from __future__ import annotations

import numpy as np


def fleiss_kappa(predictions) -> float:
    """predictions: (instances, raters) option indices, each instance rated by the same number (>= 2) of
    phrasings. 1: every phrasing agrees beyond chance; 0: no better than chance (or no spread to judge)."""
    labels = np.asarray(predictions, dtype=int)
    if labels.ndim != 2 or labels.shape[1] < 2 or labels.shape[0] < 1:
        raise ValueError("Fleiss' kappa needs (instances, raters) predictions with at least two raters.")
    n, raters = labels.shape
    counts = np.zeros((n, int(labels.max()) + 1))
    np.add.at(counts, (np.repeat(np.arange(n), raters), labels.ravel()), 1)
    agreement = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))  # per instance
    shares = counts.sum(axis=0) / (n * raters)
    chance = float((shares**2).sum())
    if chance >= 1.0:
        return 0.0  # one answer from every phrasing to every instance: no agreement beyond chance to show
    return float((agreement.mean() - chance) / (1.0 - chance))
