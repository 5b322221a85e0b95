"""Benchmarks and experiments run from the checkout (not installed): reference comparisons
and the taxonomy ablation."""
