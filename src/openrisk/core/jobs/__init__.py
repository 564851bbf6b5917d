"""The job engine: durable background work on procrastinate (docs/architecture.md).

What tasks use: ``job_runtime(context)`` (the application's resources), ``JobSpec`` (a job a
route asks the relay to defer). The engine (``engine.py``), the relay (``relay.py``) and the
worker processes (``worker.py``) are wired by ``app.py`` and ``openrisk worker``; every task
blueprint is listed in ``openrisk/tasks.py``.
"""

from openrisk.core.jobs.runtime import JobRuntime, JobSpec, job_runtime

__all__ = ["JobRuntime", "JobSpec", "job_runtime"]
