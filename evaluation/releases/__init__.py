"""The data out and back in: versioned dataset releases in the Hugging Face datasets Parquet layout, their
import as published baselines, and PromptEval-ready correctness matrices."""
