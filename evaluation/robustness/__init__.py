"""Methods that make a model robust to phrasings, as model variants: soft prompts trained so equivalent
phrasings agree (the study's method), batch calibration as an inference-only baseline, and their outcome on
the held-out phrasings."""
