"""Pure PyTorch + transformers code (loading, scoring, soft-prompt training). No Django imports here."""
