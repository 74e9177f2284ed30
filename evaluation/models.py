"""Model registry, scoring runs and results arrive with the scoring issue; the app exists so the layout
and migrations are in place from the start."""
