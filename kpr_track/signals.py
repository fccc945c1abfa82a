"""Stop signals turned into the same exception as Ctrl-C, so every run ends cleanly.

``timeout``, ``docker stop``, job schedulers and a closed terminal stop a process with
SIGTERM or SIGHUP, whose default action kills Python without running ``finally``
blocks. Inside :func:`stop_signals_raise`, SIGINT, SIGTERM and SIGHUP all raise
:class:`Interrupted` (a :class:`KeyboardInterrupt`), so the code that already closes
its files on Ctrl-C does the same for every stop signal. The CLI then exits with
status ``128 + signal number``, the shell convention for a process ended by a signal.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _State:
    """What the handler of :func:`stop_signals_raise` has seen (main thread only)."""

    raised = False  # an Interrupted was raised: later signals are ignored
    held = 0  # depth of stop_signals_held blocks
    pending: int | None = None  # a signal that arrived while held


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` is its number (SIGINT for a plain Ctrl-C)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def signal_of(interrupt: KeyboardInterrupt) -> signal.Signals:
    """The signal behind ``interrupt``: its ``signum``, or SIGINT for a plain Ctrl-C."""
    return signal.Signals(getattr(interrupt, "signum", signal.SIGINT))


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The shell's exit status for a process ended by the signal: ``128 + number``."""
    return 128 + int(signal_of(interrupt))


def _handler(signum: int, frame: object) -> None:
    if _State.raised:
        return
    if _State.held:
        _State.pending = _State.pending or signum
        return
    _State.raised = True
    raise Interrupted(signum)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, SIGINT / SIGTERM / SIGHUP raise :class:`Interrupted` once.

    Only the first signal raises: later ones are ignored while the interrupted code
    closes its files, so a second Ctrl-C or a repeated SIGTERM cannot break the
    clean-up half-way. A signal that was ignored before (``nohup`` ignores SIGHUP)
    stays ignored. The previous handlers are restored on exit. Outside the main thread
    (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _State.raised, _State.held, _State.pending = False, 0, None
    previous = {
        signum: signal.signal(signum, _handler)
        for signum in STOP_SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Delay the :class:`Interrupted` of a stop signal to the end of the block, so one
    unit of work (writing one frame to every output) is done completely or not at all.

    Only signals handled by :func:`stop_signals_raise` are held; elsewhere (library use)
    the block runs unchanged. A signal held here raises when the block ends normally.
    """
    _State.held += 1
    try:
        yield
    finally:
        _State.held -= 1
    if not _State.held and _State.pending is not None and not _State.raised:
        signum, _State.pending, _State.raised = _State.pending, None, True
        raise Interrupted(signum)
