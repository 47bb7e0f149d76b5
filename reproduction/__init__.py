"""The paper's figures and results table, from runs of ``recovery.run_recovery``.

``plan`` says which runs each figure needs, ``sweep`` brings them to completion (reusing and
resuming), ``figures`` and ``table`` turn their saved results into the outputs; ``reproduce.py`` is
the command line over them.
"""
