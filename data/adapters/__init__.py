"""Per-dataset adapters for ``python -m data.prepare`` (see data/ADAPTERS.md)."""
