"""Run :func:`~kpr_track.datasets.run.track_sequence` over many sequences: here, in local
worker processes (:mod:`~kpr_track.datasets.local`) or as Ray tasks
(:mod:`~kpr_track.datasets.cluster`).

Whatever runs them, one sequence that fails (bad input, a worker process killed, a
lost Ray node) is reported as a :class:`~kpr_track.datasets.run.SequenceFailure` and
the others go on; only Ctrl-C or a stop signal ends the whole run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

from ..errors import KprTrackError
from .run import SequenceFailure, SequenceJob, SequenceResult, track_sequence

Executor = Literal["local", "ray"]
# Ray runs a task again when its worker process or node dies, up to this many times.
DEFAULT_MAX_RETRIES = 2


def run_jobs(
    jobs: Sequence[SequenceJob],
    executor: Executor = "local",
    workers: int = 1,
    address: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> Iterator[SequenceResult | SequenceFailure]:
    """Run ``jobs``, yielding one result or failure per job as each ends.

    Args:
        jobs: the sequences.
        executor: ``"local"`` (this machine) or ``"ray"`` (a Ray cluster).
        workers: local processes at once, one process per sequence (1: all in this
            process); unused with Ray, whose cluster size sets the parallelism.
        address: Ray cluster address (``auto``, ``HOST:PORT``, ``ray://HOST:10001``);
            ignored when this process already initialised Ray.
        max_retries: Ray only: runs of a task after the first whose worker process or
            node died (an error raised by the sequence is not retried). Local workers are
            not retried: a sequence whose process was killed (most often by the
            out-of-memory killer) is reported, and a rerun of the command tracks it again.

    Raises:
        ConfigError: Ray is not installed, or no ``address`` to connect to.
        KeyboardInterrupt: Ctrl-C or a stop signal (workers are stopped first).
    """
    if executor == "ray":
        from .cluster import run_on_ray

        yield from run_on_ray(jobs, address, max_retries)
    elif workers == 1:
        for job in jobs:
            yield _in_process(job)
    else:
        from .local import run_in_processes

        yield from run_in_processes(jobs, workers)


def _in_process(job: SequenceJob) -> SequenceResult | SequenceFailure:
    try:
        return track_sequence(job)
    except KprTrackError as error:
        return SequenceFailure(job.spec, str(error))
