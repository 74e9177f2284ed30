"""Scoring runs and their jobs: registering and checking a model, what a run scores and how its chunks
land, the budget gate before bulk work, and where a run stands in the queue. The forward passes are
evaluation.ml's; this package decides what to score and stores it."""
