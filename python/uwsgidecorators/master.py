"""The ``uwsgidecorators`` master: load the task modules once, fork the processes that run them,
keep them alive, enforce harakiri, and stop them cleanly.

One single-threaded loop, no helper threads (so forking the master is always safe):

* the decisions (spawn, respawn and its back-off, whom to kill at harakiri and at shutdown, when
  to exit) are made by ``_core.Supervisor``, a pure state machine; this module only feeds it what
  happened (a fork, a reaped child, an expired deadline, a stop request, time passing, all on
  ``time.monotonic()``) and carries out what it answers (fork, SIGTERM, SIGKILL, log, exit);
* children are forked with ``os.fork`` (Python's at-fork hooks run, ``random`` is reseeded);
* every child owns one slot of the shared table (``_shared.SharedTable``), created before the
  first fork; children publish harakiri deadlines there, the master compares them with its clock
  every loop turn and reports an expired one to the supervisor (uWSGI's master does the same);
* SIGCHLD/SIGTERM/SIGINT wake the loop through ``signal.set_wakeup_fd``; dead children are reaped
  and reported; the supervisor respawns them, with a growing delay when one keeps dying right
  after it starts;
* SIGTERM or SIGINT: every child gets SIGTERM and may finish the task it is running, for at most
  ``--reload-mercy`` seconds (default 30); what is left is SIGKILLed; the master exits 0. A second
  SIGTERM/SIGINT skips the wait.

Signals (SPEC 4-7): the master owns a ``_core.MasterLoop``, created before the task modules are
imported so that ``@timer``/``@cron``/``@filemon``/``@signal`` at import time register there. The
loop waits for everything at once (the wake-up pipe of Unix signals, the control socket where
children and attached processes raise signals, timers, cron, file monitors) and routes each raised
signal as one datagram byte: to a child's private channel (a socketpair per child) or to the shared
queue of a kind (one socketpair per kind whose read end every child of that kind holds, so exactly
one idle child takes each byte). Workers wait on their channel and the worker queue and run the
handler; spoolers do the same between tasks.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any

from . import _config, _signals
from ._shared import F_PID, F_USER_DEADLINE, KIND_SPOOLER, KIND_WORKER, SharedTable
from ._spooler import StopFlag, become_spooler_process, give_back_wakeup_fd, run_spooler, take_wakeup_fd
from .options import Options, UsageError

__all__ = ['ChildSpec', 'Master', 'Settings', 'import_target', 'settings_from_options']

log = logging.getLogger('uwsgidecorators.master')

# The supervisor's settings (``_core.Supervisor``).
_QUICK_DEATH = 1.0  # a child that dies sooner than this after its start is "crash looping"
_FIRST_BACKOFF = 0.25  # the delay before respawning it, doubled at each quick death...
_MAX_BACKOFF = 30.0  # ... up to this
# Blocked in the master across a fork, until the child has set its own handlers.
_HELD_ACROSS_FORK = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM}
_TICK = 0.5  # harakiri resolution; uWSGI checks once a second
_REAP_GRACE = 10.0  # how long to wait for SIGKILLed children at shutdown before exiting anyway
_LEVELS = {'info': logging.INFO, 'warning': logging.WARNING, 'error': logging.ERROR}


@dataclass
class Settings:
    spoolers: list[bytes] = field(default_factory=list)
    """realpaths of --spooler and --spooler-external, in command-line order (first = default)"""
    external: set[int] = field(default_factory=set)
    """indexes into ``spoolers`` that get no process (--spooler-external)"""
    chdir: str | None = None
    pythonpath: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    workers: int = 1
    spooler_processes: int = 1
    frequency: float = 30.0
    max_tasks: int = 0
    harakiri: float = 0
    ordered: bool = False
    spooler_chdir: str | None = None
    spooler_imports: list[str] = field(default_factory=list)
    quiet: bool = False
    durable: bool = False
    retry_delay: float = 1.0
    retry_max_delay: float = 3600.0
    max_attempts: int = 0
    reload_mercy: float = 30.0
    opt_json: str = '{}'
    worker_harakiri: float = 0
    """--harakiri: SIGKILL a worker whose signal handler runs longer than this"""
    timers: list[tuple[int, float]] = field(default_factory=list)
    """``--timer "SIG SECS"``"""
    rbtimers: list[tuple[int, float]] = field(default_factory=list)
    """``--rbtimer "SIG SECS"``"""


def settings_from_options(opts: Options) -> Settings:
    """Validate the served options; spool dirs are created (0750) and resolved right away,
    relative to the directory the master was started in, as uWSGI does before any --chdir."""
    s = Settings()
    for item in opts.items:
        from .options import canonical

        canon = canonical(item.name)
        if canon not in ('spooler', 'spooler-external'):
            continue
        if item.value is True or item.value == '':
            raise UsageError(f'option --{item.name} needs a directory ({item.origin})')
        raw = os.fsencode(str(item.value))
        try:
            if not os.path.isdir(raw):
                os.makedirs(raw, mode=0o750, exist_ok=True)
        except OSError as exc:
            raise UsageError(f'cannot create spooler directory {item.value}: {exc.strerror or exc}') from None
        real = os.path.realpath(raw)
        if os.fsencode(os.pathsep) in real:
            raise UsageError(
                f'spooler directory {os.fsdecode(real)!r} contains {os.pathsep!r}, which cannot be exported'
            )
        if canon == 'spooler-external':
            s.external.add(len(s.spoolers))
        s.spoolers.append(real)
    chdir = opts.last('chdir')
    s.chdir = str(chdir) if isinstance(chdir, str) and chdir else None
    s.pythonpath = opts.strings('pythonpath')
    s.env = opts.strings('env')
    for entry in s.env:
        if '=' not in entry:
            raise UsageError(f'--env needs KEY=VALUE, got {entry!r}')
    s.imports = opts.strings('import')
    s.workers = int(opts.number('processes', 1, integer=True))
    s.spooler_processes = int(opts.number('spooler-processes', 1, integer=True, minimum=1))
    s.frequency = opts.number('spooler-frequency', 30.0, minimum=0.01)
    s.max_tasks = int(opts.number('spooler-max-tasks', 0, integer=True))
    s.harakiri = opts.number('spooler-harakiri', 0)
    s.ordered = opts.flag('spooler-ordered')
    sc = opts.last('spooler-chdir')
    s.spooler_chdir = str(sc) if isinstance(sc, str) and sc else None
    s.spooler_imports = opts.strings('spooler-import')
    s.quiet = opts.flag('spooler-quiet')
    s.durable = opts.flag('spooler-durable')
    s.retry_delay = opts.number('spooler-retry-delay', 1.0)
    s.retry_max_delay = opts.number('spooler-retry-max-delay', 3600.0)
    s.max_attempts = int(opts.number('spooler-max-attempts', 0, integer=True))
    s.reload_mercy = opts.number('reload-mercy', 30.0)
    s.opt_json = opts.opt_json()
    s.worker_harakiri = opts.number('harakiri', 0)
    s.timers = [_timer_option('timer', v) for v in opts.strings('timer')]
    s.rbtimers = [_timer_option('rbtimer', v) for v in opts.strings('rbtimer')]
    return s


def _timer_option(name: str, value: str) -> tuple[int, float]:
    """``--timer "SIG SECS"``: raise signal SIG every SECS seconds (its handler is registered by
    a module, as in uWSGI)."""
    parts = value.split()
    try:
        if len(parts) != 2:
            raise ValueError
        num, secs = int(parts[0]), float(parts[1])
        if num < 0 or num > 255 or not secs >= 0 or secs == float('inf'):
            raise ValueError
    except ValueError:
        raise UsageError(f'--{name} needs "SIGNUM SECONDS" (0..255 and a number >= 0), got {value!r}') from None
    return num, secs


def import_target(target: str) -> ModuleType:
    """``--import``: a module name (``pkg.tasks``) or a Python file (``tasks.py``, ``/x/y.py``)."""
    if target.endswith('.py') or os.sep in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise ImportError(f'no such Python file: {path}')
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f'cannot import {path}')
        module = importlib.util.module_from_spec(spec)
        # Registered under its stem so pickled references to its classes resolve by name.
        sys.modules.setdefault(name, module)
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(target)


@dataclass
class ChildSpec:
    kind: int  # KIND_SPOOLER | KIND_WORKER
    ident: int  # spooler number (1..) or worker id (1..N)
    dir_index: int = -1
    share: tuple[int, int] = (0, 1)  # a spooler's (index, count) among its directory's processes

    def label(self) -> str:
        return f'spooler {self.ident}' if self.kind == KIND_SPOOLER else f'worker {self.ident}'


def _make_runtime_dir() -> str:
    """A private directory (mode 0700) for the control socket, as ``tempfile.mkdtemp`` makes one;
    without tempfile, whose imports (random, shutil, bz2, lzma) every child would carry."""
    base = os.environ.get('TMPDIR') or '/tmp'
    while True:
        path = os.path.join(base, f'uwsgidecorators-{os.urandom(6).hex()}')
        try:
            os.mkdir(path, 0o700)
            return os.path.abspath(path)
        except FileExistsError:
            continue


def _set_parent_death_signal(sig: int) -> None:
    # Linux prctl(PR_SET_PDEATHSIG): if the master is SIGKILLed its children get `sig` and stop
    # after their current task instead of running on as orphans.
    # Through the core: importing ctypes for it cost each child about 0.4 MiB (bench_memory.py).
    from . import _core

    try:
        _core.set_parent_death_signal(sig)
    except OSError:  # refused: orphans are then reaped by the supervisor
        pass


class Master:
    def __init__(self, settings: Settings) -> None:
        from . import _core

        self.s = settings
        self.specs: list[ChildSpec] = []
        number = 0
        for index, _directory in enumerate(settings.spoolers):
            if index in settings.external:
                continue
            for share in range(settings.spooler_processes):
                number += 1
                self.specs.append(ChildSpec(KIND_SPOOLER, number, index, (share, settings.spooler_processes)))
        for wid in range(1, settings.workers + 1):
            self.specs.append(ChildSpec(KIND_WORKER, wid))
        self.sup: Any = _core.Supervisor(
            # a spooler that exits 0 recycled itself (--spooler-max-tasks): respawned at once
            [(spec.label(), spec.kind == KIND_SPOOLER) for spec in self.specs],
            quick_death=_QUICK_DEATH,
            first_backoff=_FIRST_BACKOFF,
            max_backoff=_MAX_BACKOFF,
            mercy=settings.reload_mercy,
            kill_grace=_REAP_GRACE,
        )
        """every decision about the children (``_core.Supervisor``); this class carries them out"""
        self.children: dict[int, int] = {}
        """pid -> slot of every forked child not reaped yet (what to release when it is reaped)"""
        self.stop_requests: list[int] = []
        """SIGTERM/SIGINT received and not yet reported to the supervisor (the handler only
        appends here: it may run between any two bytecodes of the loop)"""
        self.stopping = False
        self.exit_code: int | None = None
        self.pid = os.getpid()
        self.table: SharedTable | None = None
        self._wake_r = -1
        self._wake_w = -1
        self.ml: Any = None
        """the signal loop (``_core.MasterLoop``); a child closes its copy with ``close_in_child``
        (which leaves the master's control socket file in place)"""
        self.runtime_dir: str | None = None
        self.channels: dict[int, socket.socket] = {}
        """slot -> the master's end of that child's private signal channel"""
        self.queues: dict[str, tuple[socket.socket, socket.socket]] = {}
        """kind -> (write end kept by the master, read end shared by the children of that kind)"""
        self.events = _EventLog()

    # -- setup ------------------------------------------------------------------------------
    def _prepare_process(self) -> None:
        s = self.s
        for entry in s.env:
            key, _, value = entry.partition('=')
            os.environ[key] = value
        if s.chdir:
            try:
                os.chdir(s.chdir)
            except OSError as exc:
                raise UsageError(f'cannot chdir to {s.chdir}: {exc.strerror or exc}') from None
        # Like uWSGI, the working directory and --pythonpath entries come first on sys.path, so
        # `--import mytasks` finds mytasks.py where the master runs.
        for entry in [os.getcwd(), *s.pythonpath][::-1]:
            path = os.path.abspath(entry)
            if path in sys.path:
                sys.path.remove(path)
            sys.path.insert(0, path)

        os.environ[_config.ENV_SPOOLERS] = os.pathsep.join(os.fsdecode(d) for d in s.spoolers)
        os.environ[_config.ENV_OPT] = s.opt_json
        os.environ[_config.ENV_MASTER_PID] = str(self.pid)
        if s.durable:
            os.environ[_config.ENV_DURABLE] = '1'
        else:
            os.environ.pop(_config.ENV_DURABLE, None)
        _config.reset()
        st = _config.state()
        st.role = 'master'
        self.table = SharedTable(len(self.specs))
        st.table = self.table

    def _import_modules(self) -> None:
        settings_module = os.environ.get('DJANGO_SETTINGS_MODULE')
        if settings_module:
            try:
                import django
            except ImportError:
                log.warning(
                    'DJANGO_SETTINGS_MODULE=%s is set but django is not importable: no django.setup()', settings_module
                )
            else:
                django.setup()
                log.info('django.setup() done (settings: %s)', settings_module)
        for target in self.s.imports:
            import_target(target)
            log.info('imported %s', target)

    def _open_loop(self) -> None:
        from . import _core

        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.runtime_dir = _make_runtime_dir()
        control = os.path.join(self.runtime_dir, 'control')
        test_clock = os.environ.get(_config.ENV_TEST_CLOCK, '') == '1'
        self.ml = _core.MasterLoop(control, wakeup_fd=self._wake_r, test_clock=test_clock)
        os.environ[_config.ENV_CONTROL] = control
        for kind in ('worker', 'spooler'):
            write_end, read_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            write_end.setblocking(False)
            read_end.setblocking(False)
            self.ml.add_queue(kind, write_end.fileno())
            self.queues[kind] = (write_end, read_end)
        _signals.attach_master(self.ml)
        log.info('signal control socket: %s', control)
        if test_clock:
            log.warning(
                '*** test clock on (%s=1): control datagrams may move the cron clock ***', _config.ENV_TEST_CLOCK
            )

    def _close_loop(self) -> None:
        _signals.detach_master()
        for sock in self.channels.values():
            sock.close()
        self.channels.clear()
        for write_end, read_end in self.queues.values():
            write_end.close()
            read_end.close()
        self.queues.clear()
        self.ml = None  # the last reference: the loop closes its fds and removes the control socket
        os.environ.pop(_config.ENV_CONTROL, None)
        if self.runtime_dir:
            import shutil  # here, not at the top: every child would carry it (bench_memory.py)

            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            self.runtime_dir = None
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _add_option_timers(self) -> None:
        for num, secs in self.s.timers:
            self.ml.add_timer(num, secs)
            log.info('--timer: signal %d every %g s', num, secs)
        for num, secs in self.s.rbtimers:
            self.ml.add_timer(num, secs)
            log.info('--rbtimer: signal %d every %g s', num, secs)

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGCHLD, self._on_child)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requests.append(signum)  # reported by the loop (the wake-up fd woke it)

    def _on_child(self, signum: int, frame: FrameType | None) -> None:
        pass  # the wakeup fd already woke the loop; reaping happens there

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        log.warning('SIGHUP received: graceful reload is not implemented yet, ignored (SIGTERM stops the master)')

    # -- run --------------------------------------------------------------------------------
    def run(self) -> int:
        self._prepare_process()
        dirs = ', '.join(
            os.fsdecode(d) + (' (external)' if i in self.s.external else '') for i, d in enumerate(self.s.spoolers)
        )
        log.info('*** uwsgidecorators master (pid: %d) starting ***', self.pid)
        log.info('spoolers: %s; workers: %d', dirs or 'none', self.s.workers)
        self._open_loop()
        try:
            try:
                self._import_modules()
                self._add_option_timers()
            except Exception:
                log.error('import failed, the master stops:\n%s', traceback.format_exc().rstrip())
                return 1
            self._install_signals()
            try:
                code = self._supervise()
            finally:
                signal.set_wakeup_fd(-1)
            log.info('goodbye to uwsgidecorators (pid: %d)', self.pid)
            return code
        finally:
            self._close_loop()

    def _supervise(self) -> int:
        """Feed the supervisor until it says exit. Each turn: reap, stop requests, harakiri,
        time; then wait in the signal loop until something happens or the supervisor's next
        deadline (a respawn, the end of mercy)."""
        self._report_stops()  # a stop before the start: nothing is spawned
        self._apply(self.sup.start(time.monotonic()))
        while self.exit_code is None:
            self._reap()
            self._report_stops()
            self._check_harakiri()
            self._apply(self.sup.tick(time.monotonic()))
            if self.exit_code is None:
                self._sleep(self._timeout())
        return self.exit_code

    def _apply(self, actions: Iterable[tuple[Any, ...]]) -> None:
        """Carry out the supervisor's answer: ``('spawn', slot)``, ``('term', pid)``,
        ``('kill', pid)``, ``('log', level, message)``, ``('exit', code)``."""
        for action in actions:
            what = action[0]
            if what == 'spawn':
                self._spawn(action[1])
            elif what == 'term':
                self._signal_child(action[1], signal.SIGTERM)
            elif what == 'kill':
                self._signal_child(action[1], signal.SIGKILL)
            elif what == 'log':
                log.log(_LEVELS.get(action[1], logging.WARNING), '%s', action[2])
            elif what == 'exit':
                self.exit_code = int(action[1])
            else:
                log.error('unknown supervisor action %r, ignored', action)

    def _signal_child(self, pid: int, sig: int) -> None:
        if pid not in self.children:
            return  # already reaped: the pid may belong to another process by now
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _report_stops(self) -> None:
        while self.stop_requests:
            name = signal.Signals(self.stop_requests.pop(0)).name
            self.stopping = True
            self._apply(self.sup.stop(time.monotonic(), name))

    def _timeout(self) -> float:
        timeout = _TICK
        deadline = self.sup.next_deadline()
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - time.monotonic()))
        return timeout

    def _sleep(self, timeout: float) -> None:
        """Run the signal loop (timers, cron, file monitors, raised signals) for up to ``timeout``
        seconds; it returns at once when a Unix signal (SIGCHLD, SIGTERM...) arrives."""
        for kind, num, detail in self.ml.step(timeout):
            if kind == 'wakeup':
                continue
            if kind == 'queue_full' and self.stopping:
                continue  # children are going away: their channels close before they are reaped
            self.events.log(kind, num, detail)
        self.events.flush()

    # -- children ---------------------------------------------------------------------------
    def _spawn(self, slot: int) -> None:
        spec = self.specs[slot]
        table = self.table
        assert table is not None
        # Claimed before the fork: the child may arm a deadline at once, and the master must not
        # then wipe it when it records the pid.
        table.claim(slot, 0, spec.kind, spec.ident, spec.dir_index)
        # The child's private signal channel: the master writes one byte per signal at its end.
        chan_master, chan_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        chan_master.setblocking(False)
        chan_child.setblocking(False)
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGTERM/SIGINT stay blocked across the fork until the child has its own handlers:
        # otherwise a stop signal landing in between runs the master's handler (inherited) in the
        # child, is lost, and the child never stops. So do the signals a spooler takes over from
        # their default action (SIGUSR1 rescan, SIGALRM/SIGUSR2 ignored): one sent as soon as
        # the spooler's pid is known must not kill it before it is set up.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_ACROSS_FORK)
        try:
            pid = os.fork()
        except OSError as exc:
            # Out of processes or memory: the supervisor retries after its back-off.
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            chan_master.close()
            chan_child.close()
            table.release(slot)
            self._apply(self.sup.spawn_failed(slot, str(exc), time.monotonic()))
            return
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            chan_master.close()
            chan_child.close()
            raise
        if pid == 0:
            code = 1
            try:
                chan_master.close()
                code = self._child_main(slot, spec, old_mask, chan_child)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        chan_child.close()
        self.channels[slot] = chan_master
        self.ml.add_channel(_kind_name(spec.kind), spec.ident, chan_master.fileno())
        table.put(slot, F_PID, pid)
        self.children[pid] = slot
        if spec.kind == KIND_SPOOLER:
            directory = os.fsdecode(self.s.spoolers[spec.dir_index])
            log.info('spawned the uWSGI spooler on dir %s with pid %d', directory, pid)
        else:
            log.info('spawned uWSGI worker %d (pid: %d)', spec.ident, pid)
        self._apply(self.sup.spawned(slot, pid, time.monotonic()))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is None:
                continue  # a grandchild adopted through a subreaper: not the supervisor's
            spec = self.specs[slot]
            assert self.table is not None
            self.table.release(slot)
            # Signals for it are reported as unrouted until it is back.
            self.ml.remove_channel(_kind_name(spec.kind), spec.ident)
            chan = self.channels.pop(slot, None)
            if chan is not None:
                chan.close()
            self._apply(self.sup.exited(pid, status, time.monotonic()))

    def _check_harakiri(self) -> None:
        table = self.table
        if table is None:
            return
        for slot, pid, fld in table.expired():
            if self.children.get(pid) != slot:
                continue
            table.put(slot, fld, 0)  # reported once
            spec = self.specs[slot]
            if fld == F_USER_DEADLINE:
                what = 'user (uwsgi.set_user_harakiri)'
            elif spec.kind == KIND_SPOOLER:
                what = 'task or signal handler (--spooler-harakiri)'
            else:
                what = 'signal handler (--harakiri)'
            self._apply(self.sup.harakiri(slot, pid, time.monotonic(), what))

    # -- inside a child ---------------------------------------------------------------------
    def _child_main(self, slot: int, spec: ChildSpec, sigmask: Iterable[int], chan: socket.socket) -> int:
        signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        # The master's signal plumbing is not ours: keep only this child's channel and the read end
        # of its kind's queue. The loop's descriptors are closed; its control socket file stays.
        # The direct sender (its own socket, the shared table) outlives the loop's copy.
        direct = self.ml.direct_sender() if self.ml is not None else None
        # A worker reads the file monitors aimed at it (or at any worker) itself: one hop.
        monitors = self.ml.worker_monitors(spec.ident) if self.ml is not None and spec.kind == KIND_WORKER else None
        _signals.detach_master(direct)
        if self.ml is not None:
            self.ml.close_in_child()
            self.ml = None
        for other in self.channels.values():
            other.close()
        kind_name = _kind_name(spec.kind)
        queue = self.queues[kind_name][1]
        for name, (write_end, read_end) in self.queues.items():
            write_end.close()
            if name != kind_name:
                read_end.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        stop = StopFlag()
        stop.install()
        if spec.kind == KIND_SPOOLER:
            become_spooler_process(stop)
        signal.pthread_sigmask(signal.SIG_SETMASK, sigmask)  # a pending SIGTERM lands here now
        _set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != self.pid:
            return 0  # the master died between fork and prctl
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)

        table = self.table
        assert table is not None
        table.put(slot, F_PID, os.getpid())
        st = _config.state()
        st.role = 'spooler' if spec.kind == KIND_SPOOLER else 'worker'
        st.worker_id = spec.ident if spec.kind == KIND_WORKER else 0
        st.master_pid = self.pid
        st.slot = slot
        st.table = table
        if spec.kind == KIND_SPOOLER:
            st.spooler_dir = self.s.spoolers[spec.dir_index]

        import uwsgi

        hook = getattr(uwsgi, 'post_fork_hook', None)
        if hook is not None:
            try:
                hook()
            except Exception:
                log.error('%s: post_fork_hook raised:\n%s', spec.label(), traceback.format_exc().rstrip())

        if spec.kind == KIND_SPOOLER:
            for target in self.s.spooler_imports:
                try:
                    import_target(target)
                except Exception:
                    log.error(
                        '%s: --spooler-import %s failed:\n%s', spec.label(), target, traceback.format_exc().rstrip()
                    )
                    return 1
            s = self.s
            return run_spooler(
                self.s.spoolers[spec.dir_index],
                frequency=s.frequency,
                retry_delay=s.retry_delay,
                retry_max_delay=s.retry_max_delay,
                max_attempts=s.max_attempts,
                max_tasks=s.max_tasks,
                harakiri=s.harakiri,
                chdir=s.spooler_chdir,
                quiet=s.quiet,
                ordered=s.ordered,
                share=spec.share,
                stop=stop,
                signal_socks=(chan, queue),
            )
        return self._worker_loop(spec, stop, chan, queue, monitors)

    def _worker_loop(
        self, spec: ChildSpec, stop: StopFlag, chan: socket.socket, queue: socket.socket, monitors: Any = None
    ) -> int:
        """Run signal handlers until SIGTERM: one byte from the private channel or the shared
        worker queue is one signal. The wake-up fd closes the check-then-sleep race of SIGTERM."""
        wakeup = take_wakeup_fd()  # the child's own: _child_main cleared the master's
        where = spec.label()
        harakiri = self.s.worker_harakiri
        from . import _core

        # Signals aimed at this worker alone come from any process straight to this socket (see
        # _core.DirectSender); until it is bound they go through the master, so none is lost.
        direct = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        direct.setblocking(False)
        control = os.environ.get(_config.ENV_CONTROL, '')
        if control:
            path = _core.direct_socket_path(control, spec.ident)
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # left by this slot's previous worker
                direct.bind(path)
            except OSError as exc:
                log.warning('%s: no direct signal socket (%s): signals come through the master', where, exc)
        try:
            while not stop.requested:
                # The wait (GIL released) and the reads are the core's: one call per wake-up.
                wake_fd = wakeup[0] if wakeup is not None else -1
                for num in _core.recv_signals(
                    chan.fileno(), queue.fileno(), wake_fd, None, direct.fileno(), monitors
                ):
                    if stop.requested:
                        break
                    _signals.run_handler(num, where=where, harakiri=harakiri)
        finally:
            if wakeup is not None:
                give_back_wakeup_fd(wakeup)
            direct.close()
        return 0


def _kind_name(kind: int) -> str:
    return 'spooler' if kind == KIND_SPOOLER else 'worker'


class _EventLog:
    """Log lines for what the signal loop reports. The same line repeated within a window (a
    fast timer whose target has no process) is logged once, then counted, then summarized."""

    WINDOW = 10.0

    def __init__(self) -> None:
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}

    def log(self, kind: str, num: int, detail: str) -> None:
        key = (kind, num, detail)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.WINDOW:
            self._last[key] = (last[0], last[1] + 1)
            return
        self._emit(kind, num, detail, last[1] if last else 0)
        self._last[key] = (now, 0)

    def flush(self) -> None:
        now = time.monotonic()
        for key, (at, count) in list(self._last.items()):
            if now - at >= self.WINDOW:
                if count:
                    self._emit(*key, count)
                    self._last[key] = (now, 0)
                else:
                    del self._last[key]

    @staticmethod
    def _emit(kind: str, num: int, detail: str, repeated: int) -> None:
        more = f' (and {repeated} more time(s) in the last {_EventLog.WINDOW:g} s)' if repeated else ''
        if kind == 'unrouted':
            log.error('[uwsgi-signal] signal %d not delivered: %s%s', num, detail, more)
        elif kind == 'unregistered':
            log.error('[uwsgi-signal] unregistered signal %d (raised by %s)%s', num, detail, more)
        elif kind == 'queue_full':
            log.error('[uwsgi-signal] SIGNAL QUEUE IS FULL: signal %d to %s lost%s', num, detail, more)
        elif kind == 'bad_control':
            # a malformed datagram, or a timer, cron entry or file monitor a child added that the
            # master refuses (the child checked what it could before sending it)
            log.error('[uwsgi-signal] control datagram refused: %s%s', detail, more)
        else:
            log.warning('[uwsgi-signal] %s: signal %d %s%s', kind, num, detail, more)


def user_deadline_field() -> int:
    """The shared-table field set by ``uwsgi.set_user_harakiri`` (for tests and tools)."""
    return F_USER_DEADLINE
