"""Corpus models: one module per model, each with ``build() -> (network, probes, run_time)``."""
