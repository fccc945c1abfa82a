"""Sequences tracked in local worker processes, one process per sequence.

Each sequence runs in a fresh ``spawn`` process (torch and OpenCV thread pools do not
survive a fork) that sends its result back through its own pipe, at most ``workers``
at a time. A process that dies (SIGKILL from the out-of-memory killer, a crash) takes
only its own sequence down: its pipe ends without a result, the sequence is reported
with the signal or exit status, and the next sequence starts in a new process. There is
no shared pool whose breakage would fail every pending sequence, and no shared queue
whose semaphores a killed process could leak. A process's temporary files live in a
folder this process removes after it, killed or not.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from ..errors import KprTrackError
from ..signals import stop_signals_held
from .run import SequenceFailure, SequenceJob, SequenceResult, track_sequence_in_worker

# Seconds a worker gets to close its files after SIGTERM before it is killed.
STOP_SECONDS = 30.0


@dataclass
class _Worker:
    job: SequenceJob
    process: BaseProcess
    scratch: str


def run_in_processes(
    jobs: Sequence[SequenceJob], workers: int
) -> Iterator[SequenceResult | SequenceFailure]:
    """Track ``jobs`` in at most ``workers`` processes at once, yielding as each ends.

    On Ctrl-C or a stop signal in this process (KeyboardInterrupt), or when the caller
    closes the generator, running workers get SIGTERM (they stop as ``kpr-track track``
    does), then SIGKILL after :data:`STOP_SECONDS`.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = deque(jobs)
    running: dict[Connection, _Worker] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                with stop_signals_held():  # a stop signal waits until the worker is known
                    receive, worker = _start(context, queue.popleft())
                    running[receive] = worker
            for connection in wait(list(running)):
                with stop_signals_held():
                    outcome = _collect(running.pop(connection), connection)
                yield outcome
    finally:
        for connection, worker in running.items():
            _stop(worker)
            connection.close()


def _start(context, job: SequenceJob) -> tuple[Connection, _Worker]:
    """Start the process of one job; its end of the pipe and its record."""
    receive, send = context.Pipe(duplex=False)
    scratch = tempfile.mkdtemp(prefix=f"kpr-track-{job.spec.name}-")
    process = context.Process(
        target=_work, args=(job, send, scratch), name=f"kpr-track {job.spec.name}"
    )
    process.start()
    send.close()  # the child holds the only write end: EOF when it dies
    return receive, _Worker(job, process, scratch)


def _collect(worker: _Worker, connection: Connection) -> SequenceResult | SequenceFailure:
    """The message of a worker whose pipe is readable, or why it sent none."""
    try:
        message = connection.recv()
    except (EOFError, OSError):
        message = None
    connection.close()
    worker.process.join()
    shutil.rmtree(worker.scratch, ignore_errors=True)
    if message is None:
        return SequenceFailure(worker.job.spec, _death(worker.process.exitcode))
    return message


def _death(exitcode: int | None) -> str:
    """One line on how a worker process ended without a result."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"worker killed by {name}{hint}"
    return f"worker exited with status {exitcode} before sending a result"


def _stop(worker: _Worker) -> None:
    worker.process.terminate()
    worker.process.join(STOP_SECONDS)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
    shutil.rmtree(worker.scratch, ignore_errors=True)


def _work(job: SequenceJob, connection: Connection, scratch: str) -> None:
    """Worker process: track one sequence, send a SequenceResult or SequenceFailure.

    SIGINT is ignored (a Ctrl-C in the terminal reaches every process of the group; the
    parent decides and sends SIGTERM), SIGTERM / SIGHUP stop the sequence cleanly.
    """
    from ..signals import stop_signals_raise

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tempfile.tempdir = scratch  # removed by the parent, even after a SIGKILL
    try:
        with stop_signals_raise():
            message: SequenceResult | SequenceFailure = track_sequence_in_worker(job)
    except KprTrackError as error:
        message = SequenceFailure(job.spec, str(error))
    except KeyboardInterrupt:
        return  # stopped by the parent: it is not waiting for a result
    except Exception as error:  # a bug: its traceback on stderr, the others go on
        traceback.print_exc()
        message = SequenceFailure(job.spec, f"{type(error).__name__}: {error}")
    connection.send(message)
    connection.close()
