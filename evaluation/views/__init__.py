"""Pages that show models, runs and results, and the pages that combine phrasings with their results
(browsing, authoring with a model-format preview, my phrasings): they read both layers, so they live here."""
