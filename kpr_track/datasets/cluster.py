"""Sequences tracked as tasks of a Ray cluster, one task per sequence.

A task whose worker process dies (killed, out of memory) or whose node is lost is run
again by Ray up to ``max_retries`` times; an error the sequence raises (bad input) is
not retried. A task that still fails is reported as a
:class:`~kpr_track.datasets.run.SequenceFailure` with one line on why, and the other
tasks go on. Each sequence is counted once whatever the attempts: a task's result is
read once, and with ``--shared-out`` every attempt writes the same files atomically
(:func:`kpr_track.integrity.write_atomic`), so a retried task replaces a whole file by
the same whole file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..errors import ConfigError, KprTrackError
from .run import SequenceFailure, SequenceJob, SequenceResult, track_sequence_in_worker


def run_on_ray(
    jobs: Sequence[SequenceJob], address: str | None, max_retries: int
) -> Iterator[SequenceResult | SequenceFailure]:
    """Track ``jobs`` as Ray tasks (``num_cpus`` = each job's threads), yielding as each
    ends. Ray is initialised here (and shut down at the end) unless it already is.

    Raises:
        ConfigError: Ray is not installed, or no ``address`` to connect to.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'kpr-track[ray]'") from None
    started = not ray.is_initialized()
    if started:
        if not address:
            raise ConfigError("--executor ray needs --address (auto, HOST:PORT or ray://HOST:PORT)")
        ray.init(address=address, logging_level="WARNING")
    task = ray.remote(track_sequence_in_worker)
    pending = {
        task.options(num_cpus=job.threads, max_retries=max_retries).remote(job): job for job in jobs
    }
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            yield _outcome(ray, ready[0], job, max_retries)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _outcome(ray, ref, job: SequenceJob, max_retries: int) -> SequenceResult | SequenceFailure:
    """The task's result, or a failure whose reason is one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:  # raised by track_sequence itself
        cause = error.cause
        if isinstance(cause, KprTrackError):
            return SequenceFailure(job.spec, str(cause))
        return SequenceFailure(job.spec, f"{type(cause).__name__}: {cause}")
    except ray.exceptions.RayError as error:  # the worker or its node is gone
        first_line = next((line for line in str(error).splitlines() if line.strip()), "")
        return SequenceFailure(
            job.spec,
            f"Ray task failed after {max_retries} retries ({type(error).__name__}: "
            f"{first_line.strip()[:160]})",
        )
