"""Robust low-rank matrix recovery by double over-parameterization: the theory half of the paper.

``y = A(X*) + s*`` with X* low-rank PSD and s* sparse is fitted by gradient descent on
``1/4 ||A(U U^T) + g*g - h*h - y||^2`` with discrepant learning rates, and compared with the convex
program ``min tr(X) + lam ||s||_1`` (docs/theory.md). The modules:

- ``measurements``: the operator A (diagonal, entrywise, Gaussian) and its adjoint;
- ``planted``: a problem with known X* and s* (``plant``);
- ``descent``: the gradient descent, one problem or a batch (``descend``, ``descend_batch``);
- ``convex``: the convex program through cvxpy (``solve_convex``);
- ``compare``: distances and the program's objective;
- ``implicit_bias``, ``phase_transition``, ``learning_curves``: the three experiments;
- ``experiments``: their settings and one call running them (``matrix_recovery.py``'s engine).
"""
