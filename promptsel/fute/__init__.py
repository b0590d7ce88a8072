"""FUTE (Wang et al. 2024): task embeddings of prompts (MTEs) and datasets (DTEs) on a surrogate
model, compared by cosine; ``fute-<embedder>`` is a method like the others."""
