"""The spooler process: claim a task, hand it to ``uwsgi.spooler``, record the outcome, repeat.

The queue itself (for a spool directory: watching, claiming by lock, retry times, quarantine,
dead letters) is ``_core.Spooler``: it hands out claimed tasks with an opaque ``id``, a
``workdir`` and outcome methods whose policy lives in the core. This loop reproduces what
uWSGI's spooler and its Python plugin do around each call: the working directory, the lookup of ``uwsgi.spooler`` at call time, the mapping of
the function's result, the log lines, ``--spooler-max-tasks`` and ``--spooler-harakiri``.

Result mapping (uWSGI's Python plugin, then the core):

==========================  =======  ==========================================
function outcome            code     file
==========================  =======  ==========================================
returns -2 (SPOOL_OK)       -2       deleted (``task.ok()``)
returns 0 / no function     0        kept, "unable to find the spooler function"
returns another int/bool    value    kept, runs again after the frequency
returns a non-int           -1       kept, runs again after the frequency
raises                      -1       kept with back-off (``task.failed()``), dead
                                     letter after ``--spooler-max-attempts``
==========================  =======  ==========================================
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from types import FrameType

from _uwsgidecorators_runtime.log import format_exc, get_logger
from _uwsgidecorators_runtime import config as _config
from _uwsgidecorators_runtime.shared import F_TASK_DEADLINE, F_TASK_FD, F_TASK_INO, SharedTable, qualified_name
from . import SIG_IGN, set_handler

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    'StopFlag',
    'become_spooler_process',
    'fail_task_before_harakiri',
    'give_back_wakeup_fd',
    'run_spooler',
    'take_wakeup_fd',
]

log = get_logger('uwsgidecorators.spooler')

# How long one next_task() call may block. A stop request also wakes it at once (wake()), this
# bound only matters if a wake-up is lost, and lets a set_spooler_frequency() change be seen.
_POLL = 1.0
# How often a busy spooler runs pending signals and re-reads the frequency between tasks.
_HOUSEKEEPING = 0.005


class StopFlag:
    """Set by SIGTERM/SIGINT: finish the task in progress, then leave."""

    def __init__(self) -> None:
        self.requested = False
        self.spooler: Any = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self._tell_spooler('wake')

    def install(self) -> None:
        set_handler(signal.SIGTERM, self.handler)
        set_handler(signal.SIGINT, self.handler)

    def rescan_handler(self, signum: int, frame: FrameType | None) -> None:
        self._tell_spooler('rescan')

    def _tell_spooler(self, method: str) -> None:
        sp = self.spooler
        if sp is not None:
            try:
                getattr(sp, method)()
            except Exception:  # never let a signal handler raise into the task
                pass


def become_spooler_process(stop: StopFlag) -> None:
    """Do to this process what uWSGI's spooler does to itself: the lowest CPU priority (tasks
    yield to the workers), SIGUSR1 means "look at the directory now", and SIGALRM and SIGUSR2
    are ignored (a stray one must not kill the spooler in the middle of a task)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    except OSError as exc:
        log.warning('spooler (pid: %d) cannot lower its CPU priority: %s', os.getpid(), exc)
    set_handler(signal.SIGUSR1, stop.rescan_handler)
    set_handler(signal.SIGALRM, SIG_IGN)
    set_handler(signal.SIGUSR2, SIG_IGN)


def _c_int(value: int) -> int:
    # uWSGI stores the result in a C int: wrap like a 32-bit two's complement cast.
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _result_code(result: Any) -> int:
    if isinstance(result, int):  # bool is an int: True -> 1, as in uWSGI
        return _c_int(int(result))
    return -1


def _effective_frequency(default: float) -> float:
    st = _config.state()
    if st.table is not None and st.table.spooler_frequency > 0:
        return st.table.spooler_frequency
    import uwsgi

    local = getattr(uwsgi, '_local_spooler_frequency', 0)
    return float(local) if local else default


def run_spooler(
    directory: str | bytes,
    *,
    frequency: float = 30.0,
    retry_delay: float = 1.0,
    retry_max_delay: float = 3600.0,
    max_attempts: int = 0,
    max_tasks: int = 0,
    harakiri: float = 0,
    chdir: str | None = None,
    quiet: bool = False,
    ordered: bool = False,
    share: tuple[int, int] = (0, 1),
    trusted_uids: Sequence[int] = (),
    stop: StopFlag | None = None,
    signal_socks: Sequence[socket.socket] = (),
) -> int:
    """Consume ``directory`` until a stop is requested or ``max_tasks`` tasks ran; return 0.

    Installs SIGTERM/SIGINT handlers unless a ``stop`` flag is passed in (then the caller owns
    the signals). ``signal_socks``: this process's private signal channel, then the shared
    spooler queue (the master forks spoolers with both); their signals run between tasks, under
    ``harakiri`` as tasks do. ``share``: (index, count) of this process among the directory's
    spooler processes; each starts on its own share of a burst so they do not collide.
    ``trusted_uids``: users besides this one and root whose task files run (others' are
    quarantined); a directory others can write is refused.
    """
    import uwsgi

    from _uwsgidecorators_runtime import _core  # the extension; imported here so the module imports without it

    st = _config.state()
    if stop is None:
        stop = StopFlag()
        stop.install()

    def open_spooler(freq: float) -> Any:
        return _core.Spooler(
            directory,
            frequency=freq,
            retry_delay=retry_delay,
            retry_max_delay=retry_max_delay,
            max_attempts=max_attempts,
            numeric_names=ordered,
            share=share,
            trusted_uids=list(trusted_uids),
        )

    current_freq = _effective_frequency(frequency)
    sp = open_spooler(current_freq)  # the queue: this loop sees tasks, never files
    label = f'[spooler {os.fsdecode(sp.directory)} pid: {os.getpid()}]'
    for sock in signal_socks:
        sp.watch_fd(sock.fileno())  # next_task() returns None when a signal arrives
    wakeup = take_wakeup_fd()
    if wakeup is not None:
        sp.watch_wakeup_fd(wakeup[0])  # Unix signals wake next_task(): no polling for them
    stop.spooler = sp
    done = 0
    where = f'spooler (pid: {os.getpid()})'
    # Between tasks of a busy queue, signals and a changed frequency are looked at every
    # _HOUSEKEEPING seconds rather than after every task: each look costs system calls.
    next_housekeeping = 0.0
    woken = True
    cwd = _Cwd(sp.home, chdir)
    try:
        while not stop.requested:
            now = time.monotonic()
            if woken or now >= next_housekeeping:
                next_housekeeping = now + _HOUSEKEEPING
                _run_signals(signal_socks, where, harakiri, stop)
                if stop.requested:
                    break
                wanted = _effective_frequency(frequency)
                if wanted != current_freq:
                    # uwsgi.set_spooler_frequency changes it for every spooler, as in uWSGI.
                    sp.frequency = wanted
                    current_freq = wanted
                    log.info('%s frequency set to %g seconds', label, current_freq)
            task = sp.next_task(_POLL)
            woken = task is None
            if task is None:
                continue
            if stop.requested:
                task.release()  # claimed during shutdown: leave it for the next spooler
                break
            code = _run_task(task, uwsgi, st, label, cwd, harakiri=harakiri, quiet=quiet)
            if code != 0:
                done += 1  # uWSGI counts every task a plugin took (result != 0)
            if max_tasks and done >= max_tasks:
                log.info('%s maximum number of tasks reached (%d): recycling the spooler', label, max_tasks)
                break
    finally:
        stop.spooler = None
        sp.flush()  # finished tasks are deleted before the process leaves
        skipped = sp.unreadable
        if skipped:
            log.warning(
                '%s leaving after %d tasks; %d task file(s) could not be opened by this spooler and '
                'were skipped (each was logged once: "cannot open task file")',
                label,
                done,
                skipped,
            )
        cwd.close()
        if wakeup is not None:
            give_back_wakeup_fd(wakeup)
    return 0


def fail_task_before_harakiri(
    table: SharedTable,
    slot: int,
    pid: int,
    directory: bytes,
    *,
    what: str,
    retry_delay: float,
    retry_max_delay: float,
    max_attempts: int,
) -> None:
    """In the master, just before it kills spooler ``pid`` (slot ``slot``) for harakiri: count a
    failed attempt on the task that spooler holds, as a raised exception would, so that the kill
    neither makes the task run again at once (blocking the queue) nor escapes
    --spooler-max-attempts. Done while the spooler still holds the task's lock: when the kill
    drops it, the back-off (or the move to dead/) is already on the file."""
    fd = table.get(slot, F_TASK_FD) - 1
    if fd < 0:
        return  # between tasks (a signal handler ran too long)
    from _uwsgidecorators_runtime import _core

    reason = f'killed by harakiri ({what}) while running this task in spooler pid {pid}'
    try:
        out = _core.fail_held_task(
            f'/proc/{pid}/fd/{fd}',
            table.get(slot, F_TASK_INO),
            directory,
            reason=reason,
            retry_delay=retry_delay,
            retry_max_delay=retry_max_delay,
            max_attempts=max_attempts,
        )
    except OSError as exc:
        log.error('spooler (pid: %d): cannot count the harakiri as a failed attempt of its task: %s', pid, exc)
        return
    if out is None:
        return  # the task ended meanwhile
    attempts, retry_at, dead = out
    if dead is not None:
        log.error(
            'spooler (pid: %d): task %s moved to %s after %d failed attempts (the last: harakiri)',
            pid,
            os.path.basename(os.fsdecode(dead)),
            os.fsdecode(dead),
            attempts,
        )
    else:
        log.error(
            'spooler (pid: %d): harakiri counted as failed attempt %d of its task; it runs again at %s',
            pid,
            attempts,
            time.strftime('%H:%M:%S', time.localtime(retry_at or 0)),
        )


def take_wakeup_fd() -> tuple[int, int] | None:
    """Become the process's signal wake-up fd (``signal.set_wakeup_fd``) unless something else
    already is (an event loop) or this is not the main thread; return the pipe (read, write)."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        previous = None
    if previous == -1:
        return r, w
    if previous is not None:
        signal.set_wakeup_fd(previous)
    os.close(r)
    os.close(w)
    return None


def give_back_wakeup_fd(pipe: tuple[int, int]) -> None:
    current = signal.set_wakeup_fd(-1)
    if current != pipe[1]:
        signal.set_wakeup_fd(current)  # replaced while the spooler ran: not ours to clear
    os.close(pipe[0])
    os.close(pipe[1])


def _run_signals(socks: Sequence[socket.socket], where: str, harakiri: float, stop: StopFlag) -> None:
    """Run the signals waiting for this spooler: all of its private channel, one from the shared
    queue (the other spoolers take the rest)."""
    if not socks:
        return
    from _uwsgidecorators_runtime import signals as _signals

    for index, sock in enumerate(socks):
        while not stop.requested:
            try:
                data = sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            for num in data:
                _signals.run_handler(num, where=where, harakiri=harakiri)
            if index > 0:
                break


class _Cwd:
    """Where tasks run: the queue's home (the spool directory) or --spooler-chdir, or the task's
    own ``workdir`` (a priority subdirectory) when there is no --spooler-chdir.

    As in uWSGI, each task starts there and the process goes back after each task, so a task's
    own chdir never reaches the next one. Going back is an fchdir() on a handle kept open: no
    path lookup per task, and none between a wake-up and the task's start.
    """

    __slots__ = ('away', 'fd', 'home', 'root')

    def __init__(self, root: bytes, chdir: str | None) -> None:
        self.root = root  # the queue's home, as the core resolved it
        self.home: bytes | str = chdir if chdir else root
        self.away = True
        try:
            self.fd: int | None = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            self.fd = None  # a missing --spooler-chdir: each task's chdir logs why
        self.back()

    def enter(self, task: Any, label: str) -> None:
        # uWSGI runs a task in the directory holding its file (a priority subdir for prioritized
        # jobs) unless --spooler-chdir says otherwise: the queue reports it as the task's workdir.
        own = task.workdir if self.home is self.root else None
        where = self.home if own is None else own
        if where is self.home and not self.away:
            return
        try:
            os.chdir(where)
            self.away = where is not self.home
        except OSError as exc:
            self.away = True
            log.error('%s cannot chdir for task %s: %s', label, os.fsdecode(task.name), exc)

    def back(self) -> None:
        if self.fd is None:
            return
        try:
            os.fchdir(self.fd)
            self.away = False
        except OSError:
            self.away = True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _spool_function_name(job: dict[Any, Any]) -> str:
    """The task's function (its ``ud_spool_func``, qualified when this process registered it),
    for the master's harakiri line; only looked up when a harakiri deadline is armed."""
    raw = job.get(b'ud_spool_func', job.get('ud_spool_func'))
    if raw is None:
        return 'uwsgi.spooler (a task without ud_spool_func)'
    name = raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else str(raw)
    decorators = sys.modules.get('uwsgidecorators')
    func = getattr(decorators, 'spooler_functions', {}).get(name)
    return qualified_name(func) if func is not None else name


def _run_task(
    task: Any,
    uwsgi: Any,
    st: _config.RuntimeState,
    label: str,
    cwd: _Cwd,
    *,
    harakiri: float,
    quiet: bool,
) -> int:
    table, slot = st.table, st.slot
    cwd.enter(task, label)
    if table is not None and slot is not None and harakiri > 0:
        # What the master needs to count a harakiri as a failed attempt of this task.
        table.put(slot, F_TASK_INO, task.ino)
        table.put(slot, F_TASK_FD, task.fd + 1)
        table.arm(slot, F_TASK_DEADLINE, harakiri)
    started = 0.0 if quiet else time.monotonic()
    try:
        func = getattr(uwsgi, 'spooler', None)
        if func is None:
            log.error('%s unable to find the spooler function, have you loaded it into the spooler process ?', label)
            task.retry()
            return 0
        try:
            job = task.plugin_dict()
            if table is not None and slot is not None and harakiri > 0:
                table.set_name(slot, F_TASK_DEADLINE, _spool_function_name(job))
            result = func(job)
        except SystemExit as exc:
            # A task calling sys.exit() ends the process (the master respawns it); the job counts
            # as failed so the back-off and the dead letter still apply.
            task.failed(f'the task called sys.exit({exc.code!r})')
            raise
        except Exception:
            name = os.fsdecode(task.name)  # read before the outcome: the task is gone after it
            tb = format_exc()
            attempts, _retry_at, dead = task.failed(tb)
            log.error('%s task %s raised (attempt %d):\n%s', label, name, attempts, tb)
            if dead is not None:
                log.error('%s task %s moved to %s after %d failed attempts', label, name, os.fsdecode(dead), attempts)
            return -1
        # SPOOL_OK, the usual answer, without the general mapping
        code = -2 if result.__class__ is int and result == -2 else _result_code(result)
        name = '' if quiet else os.fsdecode(task.name)
        if code == -2:
            task.ok()
            if not quiet:
                log.info('%s done with task %s after %d seconds', label, name, int(time.monotonic() - started))
        elif code == 0:
            task.retry()
            log.error('%s unable to find the spooler function, have you loaded it into the spooler process ?', label)
        else:
            task.retry()
            if not quiet:
                log.info('%s task %s will run again (returned %r)', label, name, result)
        return code
    finally:
        if table is not None and slot is not None and harakiri > 0:
            table.put(slot, F_TASK_DEADLINE, 0)
            table.put(slot, F_TASK_FD, 0)
        sys.stdout.flush()
        sys.stderr.flush()
        cwd.back()
