"""The ``uwsgidecorators`` master: load the task modules once, fork the processes that run them,
keep them alive, enforce harakiri, and stop them cleanly.

One single-threaded loop, no helper threads (so forking the master is always safe):

* children are forked with ``os.fork`` (Python's at-fork hooks run, ``random`` is reseeded);
* every child owns one slot of the shared table (``_shared.SharedTable``), created before the
  first fork; children publish harakiri deadlines there, the master compares them with its clock
  every loop turn and SIGKILLs a child whose deadline passed (uWSGI's master does the same);
* SIGCHLD/SIGTERM/SIGINT wake the loop through ``signal.set_wakeup_fd``; dead children are reaped
  and respawned, with a growing delay when one keeps dying right after it starts;
* SIGTERM or SIGINT: every child gets SIGTERM and may finish the task it is running, for at most
  ``--reload-mercy`` seconds (default 30); what is left is SIGKILLed; the master exits 0. A second
  SIGTERM/SIGINT skips the wait.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import FrameType, ModuleType

from . import _config
from ._shared import F_PID, F_TASK_DEADLINE, F_USER_DEADLINE, KIND_SPOOLER, KIND_WORKER, SharedTable
from ._spooler import StopFlag, run_spooler
from .options import Options, UsageError

__all__ = ['ChildSpec', 'Master', 'Settings', 'import_target', 'settings_from_options']

log = logging.getLogger('uwsgidecorators.master')

_QUICK_DEATH = 1.0  # a child that dies sooner than this after its start is "crash looping"
_MAX_BACKOFF = 30.0
_TICK = 0.5  # harakiri resolution; uWSGI checks once a second


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
    return s


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

    def label(self) -> str:
        return f'spooler {self.ident}' if self.kind == KIND_SPOOLER else f'worker {self.ident}'


def _set_parent_death_signal(sig: int) -> None:
    # Linux prctl(PR_SET_PDEATHSIG): if the master is SIGKILLed its children get `sig` and stop
    # after their current task instead of running on as orphans.
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig, 0, 0, 0)
    except Exception:  # not Linux / no libc symbol: orphans are then reaped by the supervisor
        pass


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f'killed by signal {sig} ({name})'
    return f'exited with status {os.waitstatus_to_exitcode(status)}'


class Master:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.specs: list[ChildSpec] = []
        number = 0
        for index, _directory in enumerate(settings.spoolers):
            if index in settings.external:
                continue
            for _ in range(settings.spooler_processes):
                number += 1
                self.specs.append(ChildSpec(KIND_SPOOLER, number, index))
        for wid in range(1, settings.workers + 1):
            self.specs.append(ChildSpec(KIND_WORKER, wid))
        n = len(self.specs)
        self.slot_pid = [0] * n
        self.children: dict[int, int] = {}
        self.spawned_at = [0.0] * n
        self.next_spawn = [0.0] * n
        self.quick_deaths = [0] * n
        self.harakiri_killed: set[int] = set()
        self.stop_signal: int | None = None
        self.forced = False
        self.pid = os.getpid()
        self.table: SharedTable | None = None
        self._wake_r = -1
        self._wake_w = -1

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

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGCHLD, self._on_child)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        else:
            self.forced = True

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
        try:
            self._import_modules()
        except Exception:
            log.error('import failed, the master stops:\n%s', traceback.format_exc().rstrip())
            return 1
        self._install_signals()
        try:
            if self.stop_signal is None:
                for slot in range(len(self.specs)):
                    self._spawn(slot)
            while self.stop_signal is None:
                self._reap(respawn=True)
                if self.stop_signal is not None:
                    break
                now = time.monotonic()
                for slot, pid in enumerate(self.slot_pid):
                    if pid == 0 and now >= self.next_spawn[slot]:
                        self._spawn(slot)
                        if self.stop_signal is not None:
                            break
                self._enforce_harakiri()
                self._sleep(self._timeout())
            return self._shutdown()
        finally:
            signal.set_wakeup_fd(-1)
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _timeout(self) -> float:
        now = time.monotonic()
        timeout = _TICK
        for slot, pid in enumerate(self.slot_pid):
            if pid == 0:
                timeout = min(timeout, max(0.0, self.next_spawn[slot] - now))
        return timeout

    def _sleep(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
        except InterruptedError:
            return
        if ready:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass

    # -- children ---------------------------------------------------------------------------
    def _spawn(self, slot: int) -> None:
        spec = self.specs[slot]
        table = self.table
        assert table is not None
        # Claimed before the fork: the child may arm a deadline at once, and the master must not
        # then wipe it when it records the pid.
        table.claim(slot, 0, spec.kind, spec.ident, spec.dir_index)
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGTERM/SIGINT stay blocked across the fork until the child has its own handlers:
        # otherwise a stop signal landing in between runs the master's handler (inherited) in the
        # child, is lost, and the child never stops.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            raise
        if pid == 0:
            code = 1
            try:
                code = self._child_main(slot, spec, old_mask)
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
        table.put(slot, F_PID, pid)
        self.slot_pid[slot] = pid
        self.children[pid] = slot
        self.spawned_at[slot] = time.monotonic()
        if spec.kind == KIND_SPOOLER:
            directory = os.fsdecode(self.s.spoolers[spec.dir_index])
            log.info('spawned the uWSGI spooler on dir %s with pid %d', directory, pid)
        else:
            log.info('spawned uWSGI worker %d (pid: %d)', spec.ident, pid)

    def _reap(self, *, respawn: bool) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is None:
                continue  # a grandchild adopted through a subreaper, or already handled
            spec = self.specs[slot]
            assert self.table is not None
            self.table.release(slot)
            self.slot_pid[slot] = 0
            lived = time.monotonic() - self.spawned_at[slot]
            how = _describe_status(status)
            killed_by_us = pid in self.harakiri_killed
            self.harakiri_killed.discard(pid)
            if not respawn:
                log.info('%s (pid: %d) %s', spec.label(), pid, how)
                continue
            recycled = spec.kind == KIND_SPOOLER and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            if recycled or killed_by_us or lived >= _QUICK_DEATH:
                self.quick_deaths[slot] = 0
                delay = 0.0
            else:
                self.quick_deaths[slot] += 1
                delay = min(0.25 * 2 ** (self.quick_deaths[slot] - 1), _MAX_BACKOFF)
            self.next_spawn[slot] = time.monotonic() + delay
            if recycled:
                log.info('%s (pid: %d) recycled itself, respawning', spec.label(), pid)
            else:
                when = (
                    f' in {delay:g} s (it died {self.quick_deaths[slot]} time(s) right after starting)' if delay else ''
                )
                log.warning('DAMN ! %s (pid: %d) %s, respawning%s', spec.label(), pid, how, when)

    def _enforce_harakiri(self) -> None:
        table = self.table
        if table is None:
            return
        for slot, pid, fld in table.expired():
            if self.children.get(pid) != slot:
                continue
            spec = self.specs[slot]
            what = 'task (--spooler-harakiri)' if fld == F_TASK_DEADLINE else 'user (uwsgi.set_user_harakiri)'
            log.error('*** HARAKIRI ON %s (pid: %d): %s deadline passed, SIGKILL ***', spec.label().upper(), pid, what)
            table.put(slot, fld, 0)
            self.harakiri_killed.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _shutdown(self) -> int:
        assert self.stop_signal is not None
        name = signal.Signals(self.stop_signal).name
        mercy = self.s.reload_mercy
        log.info(
            '%s received: stopping %d child process(es), waiting up to %g s for running tasks',
            name,
            len(self.children),
            mercy,
        )
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + mercy
        while self.children and not self.forced:
            self._reap(respawn=False)
            if not self.children:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._enforce_harakiri()
            self._sleep(min(0.1, remaining))
        for pid, slot in list(self.children.items()):
            log.warning('%s (pid: %d) still running, SIGKILL', self.specs[slot].label(), pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 10.0
        while self.children and time.monotonic() < end:
            self._reap(respawn=False)
            if self.children:
                time.sleep(0.02)
        log.info('goodbye to uwsgidecorators (pid: %d)', self.pid)
        return 0

    # -- inside a child ---------------------------------------------------------------------
    def _child_main(self, slot: int, spec: ChildSpec, sigmask: Iterable[int]) -> int:
        signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        stop = StopFlag()
        stop.install()
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
                stop=stop,
            )
        return self._worker_idle(stop)

    def _worker_idle(self, stop: StopFlag) -> int:
        # Workers have nothing to do until the signal framework lands: they ran the post-fork
        # hooks and now wait for SIGTERM. The wakeup fd closes the check-then-sleep race.
        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        try:
            while not stop.requested:
                select.select([r], [], [])
                os.read(r, 512)
        finally:
            signal.set_wakeup_fd(-1)
            os.close(r)
            os.close(w)
        return 0


def user_deadline_field() -> int:
    """The shared-table field set by ``uwsgi.set_user_harakiri`` (for tests and tools)."""
    return F_USER_DEADLINE
