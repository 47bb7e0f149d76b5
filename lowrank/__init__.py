"""Robust low-rank matrix recovery by double over-parameterization: the theory half of the paper.

See docs/theory.md."""
