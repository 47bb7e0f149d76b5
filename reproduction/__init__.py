"""The paper's figures and results table, from runs of ``recovery.run_recovery``.

``plan`` says which runs each figure needs, ``sweep`` brings them to completion (reusing and
resuming), ``figures`` and ``table`` turn their saved results into the outputs, ``pipeline`` goes
from a request to all of them; ``reproduce.py`` is the command line over it.

Where the runs compute (``launch_settings``): here, one after another (``sweep``); as local jobs,
one per GPU (``local_jobs``); or as a Slurm job array (``slurm_launch``, with ``slurm_status`` saying
where each run stands). Every job is a ``run_task.RunTask``; ``states`` names where a run stands.
"""
