"""Benchmarks and accuracy harness of napari-sam2v (importable from tests)."""
