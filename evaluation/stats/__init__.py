"""The pure statistics of the leaderboards: figures, their bootstrap and posterior draws, paired comparisons,
rank intervals and the adaptive estimator. numpy, scipy and scikit-learn only: no Django, no database, no
model code (an import contract in pyproject.toml holds it to that), so every formula is tested on arrays."""
