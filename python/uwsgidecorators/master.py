"""The ``uwsgidecorators`` master: load the task modules once, fork the processes that run them,
keep them alive, enforce harakiri, and stop them cleanly.

One single-threaded loop, no helper threads (so forking the master is always safe):

* the decisions (spawn, respawn and its back-off, whom to kill at harakiri and at shutdown, when
  to exit) are made by ``_core.Supervisor``, a pure state machine; this module only feeds it what
  happened (a fork, a reaped child, an expired deadline, a stop request, time passing, all on
  ``time.monotonic()``) and carries out what it answers (``_core.Action``: fork, SIGTERM,
  SIGKILL, log, exit);
* children are forked with ``os.fork`` (Python's at-fork hooks run, ``random`` is reseeded);
* every child owns one slot of the shared table (``_uwsgidecorators_runtime.shared.SharedTable``), created before the
  first fork; children publish harakiri deadlines there, the master compares them with its clock
  every loop turn and reports an expired one to the supervisor (uWSGI's master does the same);
* SIGCHLD/SIGTERM/SIGINT wake the loop through ``signal.set_wakeup_fd``; dead children are reaped
  and reported; the supervisor respawns them, with a growing delay when one keeps dying right
  after it starts;
* SIGTERM or SIGINT: every child gets SIGTERM and may finish the task it is running, for at most
  ``--reload-mercy`` seconds (default 30); what is left is SIGKILLed; the master exits 0. A second
  SIGTERM/SIGINT skips the wait.
* Reload (SIGHUP, ``uwsgi.reload()``, ``--touch-reload``, ``--py-autoreload``): a short
  subprocess first checks that the task modules import (if not, the log says why and the running
  children stay); then the children stop as for SIGTERM, and the master re-executes itself (same
  pid, argv, working directory and environment), keeping its control socket and its lock across
  the ``exec``, so the modules are imported afresh. ``--touch-spoolers-reload`` restarts only the
  spoolers.

Signals (SPEC 4-7): the master owns a ``_core.MasterLoop``, created before the task modules are
imported so that ``@timer``/``@cron``/``@filemon``/``@signal`` at import time register there. The
loop waits for everything at once (the wake-up pipe of Unix signals, the control socket where
children and attached processes raise signals, timers, cron, file monitors) and routes each raised
signal as one datagram byte: to a child's private channel (a socketpair per child) or to the shared
queue of a kind (one socketpair per kind whose read end every child of that kind holds, so exactly
one idle child takes each byte). Workers wait on their channel and the worker queue and run the
handler; spoolers do the same between tasks. After the fork a child closes the master's plumbing
and hands over to its role (``_roles``: ``enter_role``, then ``spooler.run_spooler`` or
``worker.run_worker``).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Iterable
from types import FrameType, ModuleType

from _uwsgidecorators_runtime import log as _log
from _uwsgidecorators_runtime.log import format_exc, get_logger
from _uwsgidecorators_runtime import config as _config
from _uwsgidecorators_runtime import region as _region
from _uwsgidecorators_runtime import signals as _signals
from _uwsgidecorators_runtime import _core
from _uwsgidecorators_runtime.shared import F_PID, F_USER_DEADLINE, SharedTable
from . import _roles
from ._roles import enter_role
from ._roles.spooler import (
    StopFlag,
    become_spooler_process,
    fail_task_before_harakiri,
    run_spooler,
)
from ._roles.worker import run_worker
from .options import Options, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

__all__ = ['ChildSpec', 'Master', 'Settings', 'import_target', 'settings_from_options']

log = get_logger('uwsgidecorators.master')

# The supervisor's settings (``_core.Supervisor``).
_QUICK_DEATH = 1.0  # a child that dies sooner than this after its start is "crash looping"
_FIRST_BACKOFF = 0.25  # the delay before respawning it, doubled at each quick death...
_MAX_BACKOFF = 30.0  # ... up to this
# Blocked in the master across a fork, until the child has set its own handlers.
_HELD_ACROSS_FORK = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM}
_TICK = 0.5  # harakiri resolution; uWSGI checks once a second
_REAP_GRACE = 10.0  # how long to wait for SIGKILLed children at shutdown before exiting anyway
_LEVELS = {'info': _log.INFO, 'warning': _log.WARNING, 'error': _log.ERROR}
_CHECK_TIMEOUT = 60.0  # how long the import check before a reload may take
ENV_RELOAD = 'UWSGIDECORATORS_RELOAD'
"""set by a reloading master for the master it re-executes: what it keeps across the exec (JSON)"""
ENV_RELOAD_CHECK = 'UWSGIDECORATORS_RELOAD_CHECK'
"""'1' in the subprocess that checks the task modules import before a reload"""


class Settings:
    __slots__ = (
        'spoolers', 'external', 'chdir', 'pythonpath', 'env', 'imports', 'workers', 'locks', 'spooler_processes',
        'frequency', 'max_tasks', 'harakiri', 'ordered', 'spooler_chdir', 'spooler_imports', 'quiet', 'durable',
        'retry_delay', 'retry_max_delay', 'max_attempts', 'trusted_uids', 'reload_mercy', 'opt_json', 'opt',
        'worker_harakiri', 'timers', 'rbtimers', 'control', 'pidfile', 'pidfile2', 'vacuum', 'logto', 'logto2', 'uid',
        'gid', 'user_name', 'no_initgroups', 'created_dirs', 'erlang', 'erlang_cookie', 'log_date', 'mules', 'farms',
        'mule_msg_size', 'mule_harakiri', 'mule_send_timeout', 'touch_reload', 'touch_spoolers_reload',
        'py_autoreload', 'py_autoreload_ignore', 'rpc_sockets', 'listen', 'socket_timeout', 'rpc_max_connections',
    )

    spoolers: list[bytes]
    """realpaths of --spooler and --spooler-external, in command-line order (first = default)"""
    external: set[int]
    """indexes into ``spoolers`` that get no process (--spooler-external)"""
    chdir: str | None
    pythonpath: list[str]
    env: list[str]
    imports: list[str]
    workers: int
    locks: int
    """--locks N: user locks 0 to N (uWSGI's numbering: lock 0 always exists)"""
    spooler_processes: int
    frequency: float
    max_tasks: int
    harakiri: float
    ordered: bool
    spooler_chdir: str | None
    spooler_imports: list[str]
    quiet: bool
    durable: bool
    retry_delay: float
    retry_max_delay: float
    max_attempts: int
    trusted_uids: list[int]
    """--spooler-trusted-user: uids whose task files run besides the spooler's own and root's"""
    reload_mercy: float
    opt_json: str
    opt: dict[str, str | bool | list[str]] | None
    """what opt_json encodes, when the options were parsed here (the master then need not decode it)"""
    worker_harakiri: float
    """--harakiri: SIGKILL a worker whose signal handler runs longer than this"""
    timers: list[tuple[int, float]]
    """``--timer "SIG SECS"``"""
    rbtimers: list[tuple[int, float]]
    """``--rbtimer "SIG SECS"``"""
    control: str | None
    """--control-socket: where the control socket goes (default: next to the first spool dir)"""
    pidfile: str | None
    """--pidfile: the master's pid, written before privileges are dropped"""
    pidfile2: str | None
    """--pidfile2: the same, written after privileges are dropped"""
    vacuum: bool
    """--vacuum: remove the pidfiles at exit (--pidfile only when privileges were not dropped)"""
    logto: str | None
    """--logto: stdout and stderr of the master and every child appended to this file (opened
    before privileges are dropped)"""
    logto2: str | None
    """--logto2: the same, opened after privileges are dropped"""
    uid: int | None
    """--uid (a name or a number), resolved: privileges are dropped to it before the imports"""
    gid: int | None
    """--gid (a name or a number), resolved; with --uid alone, the user's primary group"""
    user_name: str | None
    """the --uid user's name, for initgroups"""
    no_initgroups: bool
    """--no-initgroups: no supplementary groups at all (else the --uid user's own, as uWSGI)"""
    created_dirs: list[bytes]
    """spool dirs this master created (given to the --uid/--gid user)"""
    erlang: str | None
    """--erlang NAME: run an Erlang node of that name in a child process (``_erlang.run_node``)"""
    erlang_cookie: str | None
    """--erlang-cookie: its cookie (default: ~/.erlang.cookie, as Erlang)"""
    log_date: str | None
    """--log-date: None (off), '' (uWSGI's ctime date) or a strftime format; each log line starts
    with it and ' - '"""
    mules: list[str | None]
    """--mules N and --mule[=script] in declaration order (mule ids 1..N): None for a plain mule,
    else its script (``x.py``) or ``module:function``"""
    farms: list[tuple[str, list[int]]]
    """--farm NAME:1,2: (name, mule ids)"""
    mule_msg_size: int
    """--mule-msg-size: the largest mule message in bytes"""
    mule_harakiri: float
    """--mule-harakiri: SIGKILL a mule whose message (or signal handler) runs longer than this"""
    mule_send_timeout: float
    """--mule-send-timeout (ours): how long a sender waits for room in a full mule queue"""
    touch_reload: list[str]
    """--touch-reload: reload gracefully when one of these files' mtime changes"""
    touch_spoolers_reload: list[str]
    """--touch-spoolers-reload: restart the spoolers gracefully when one of these changes"""
    py_autoreload: float
    """--py-autoreload N: every N seconds, reload when an imported module's file changed"""
    py_autoreload_ignore: list[str]
    """--py-auto-reload-ignore: module names the scan skips"""
    rpc_sockets: list[str]
    """--socket / --uwsgi-socket: addresses where the workers serve uWSGI RPC (modifier1 173);
    only with --plugin rpc, as Debian's uWSGI (else the options get a notice)"""
    listen: int
    """--listen: backlog of each RPC socket (pending connections the kernel keeps)"""
    socket_timeout: float
    """--socket-timeout: an RPC client's time to send its request (and to take the reply)"""
    rpc_max_connections: int
    """--rpc-max-connections (ours): connections one worker reads or writes at once"""

    def __init__(
        self,
        spoolers: list[bytes] | None = None,
        external: set[int] | None = None,
        chdir: str | None = None,
        pythonpath: list[str] | None = None,
        env: list[str] | None = None,
        imports: list[str] | None = None,
        workers: int = 1,
        locks: int = 0,
        spooler_processes: int = 1,
        frequency: float = 30.0,
        max_tasks: int = 0,
        harakiri: float = 0,
        ordered: bool = False,
        spooler_chdir: str | None = None,
        spooler_imports: list[str] | None = None,
        quiet: bool = False,
        durable: bool = False,
        retry_delay: float = 1.0,
        retry_max_delay: float = 3600.0,
        max_attempts: int = 0,
        trusted_uids: list[int] | None = None,
        reload_mercy: float = 30.0,
        opt_json: str = '{}',
        opt: dict[str, str | bool | list[str]] | None = None,
        worker_harakiri: float = 0,
        timers: list[tuple[int, float]] | None = None,
        rbtimers: list[tuple[int, float]] | None = None,
        control: str | None = None,
        pidfile: str | None = None,
        pidfile2: str | None = None,
        vacuum: bool = False,
        logto: str | None = None,
        logto2: str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        user_name: str | None = None,
        no_initgroups: bool = False,
        created_dirs: list[bytes] | None = None,
        erlang: str | None = None,
        erlang_cookie: str | None = None,
        log_date: str | None = None,
        mules: list[str | None] | None = None,
        farms: list[tuple[str, list[int]]] | None = None,
        mule_msg_size: int = 65536,
        mule_harakiri: float = 0,
        mule_send_timeout: float = 5.0,
        touch_reload: list[str] | None = None,
        touch_spoolers_reload: list[str] | None = None,
        py_autoreload: float = 0,
        py_autoreload_ignore: list[str] | None = None,
        rpc_sockets: list[str] | None = None,
        listen: int = 100,
        socket_timeout: float = 4.0,
        rpc_max_connections: int = 64,
    ) -> None:
        self.spoolers = [] if spoolers is None else spoolers
        self.external = set() if external is None else external
        self.chdir = chdir
        self.pythonpath = [] if pythonpath is None else pythonpath
        self.env = [] if env is None else env
        self.imports = [] if imports is None else imports
        self.workers = workers
        self.locks = locks
        self.spooler_processes = spooler_processes
        self.frequency = frequency
        self.max_tasks = max_tasks
        self.harakiri = harakiri
        self.ordered = ordered
        self.spooler_chdir = spooler_chdir
        self.spooler_imports = [] if spooler_imports is None else spooler_imports
        self.quiet = quiet
        self.durable = durable
        self.retry_delay = retry_delay
        self.retry_max_delay = retry_max_delay
        self.max_attempts = max_attempts
        self.trusted_uids = [] if trusted_uids is None else trusted_uids
        self.reload_mercy = reload_mercy
        self.opt_json = opt_json
        self.opt = opt
        self.worker_harakiri = worker_harakiri
        self.timers = [] if timers is None else timers
        self.rbtimers = [] if rbtimers is None else rbtimers
        self.control = control
        self.pidfile = pidfile
        self.pidfile2 = pidfile2
        self.vacuum = vacuum
        self.logto = logto
        self.logto2 = logto2
        self.uid = uid
        self.gid = gid
        self.user_name = user_name
        self.no_initgroups = no_initgroups
        self.created_dirs = [] if created_dirs is None else created_dirs
        self.erlang = erlang
        self.erlang_cookie = erlang_cookie
        self.log_date = log_date
        self.mules = [] if mules is None else mules
        self.farms = [] if farms is None else farms
        self.mule_msg_size = mule_msg_size
        self.mule_harakiri = mule_harakiri
        self.mule_send_timeout = mule_send_timeout
        self.touch_reload = [] if touch_reload is None else touch_reload
        self.touch_spoolers_reload = [] if touch_spoolers_reload is None else touch_spoolers_reload
        self.py_autoreload = py_autoreload
        self.py_autoreload_ignore = [] if py_autoreload_ignore is None else py_autoreload_ignore
        self.rpc_sockets = [] if rpc_sockets is None else rpc_sockets
        self.listen = listen
        self.socket_timeout = socket_timeout
        self.rpc_max_connections = rpc_max_connections


def settings_from_options(opts: Options) -> Settings:
    """Validate the served options; spool dirs are created (0700) and resolved right away,
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
                os.makedirs(raw, mode=0o700, exist_ok=True)  # uWSGI: 0750
                s.created_dirs.append(os.path.realpath(raw))
            from _uwsgidecorators_runtime import _core

            insecure = _core.insecure_spool_dir(raw)
        except OSError as exc:
            raise UsageError(f'cannot create spooler directory {item.value}: {exc.strerror or exc}') from None
        if insecure is not None:
            raise UsageError(insecure)
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
    s.locks = int(opts.number('locks', 0, integer=True))
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
    s.trusted_uids = [_uid_option(v) for v in opts.strings('spooler-trusted-user')]
    s.reload_mercy = opts.number('reload-mercy', 30.0)
    s.opt = opts.opt_dict()
    s.opt_json = opts.opt_json()
    s.worker_harakiri = opts.number('harakiri', 0)
    s.timers = [_timer_option('timer', v) for v in opts.strings('timer')]
    s.rbtimers = [_timer_option('rbtimer', v) for v in opts.strings('rbtimer')]
    s.control = _path_option(opts, 'control-socket')
    s.pidfile = _path_option(opts, 'pidfile')
    s.pidfile2 = _path_option(opts, 'pidfile2')
    s.vacuum = opts.flag('vacuum')
    s.logto = _log_option(opts, 'logto')
    s.logto2 = _log_option(opts, 'logto2')
    s.touch_reload = [os.path.abspath(p) for p in opts.strings('touch-reload')]
    s.touch_spoolers_reload = [os.path.abspath(p) for p in opts.strings('touch-spoolers-reload')]
    s.py_autoreload = opts.number('py-autoreload', 0)
    s.py_autoreload_ignore = opts.strings('py-auto-reload-ignore')
    s.erlang = _str_option(opts, 'erlang')
    s.erlang_cookie = _str_option(opts, 'erlang-cookie')
    from .options import rpc_plugin

    s.rpc_sockets = opts.strings('socket') if rpc_plugin(opts) else []
    s.listen = int(opts.number('listen', 100, integer=True, minimum=1))
    s.socket_timeout = opts.number('socket-timeout', 4.0, minimum=0.001)
    s.rpc_max_connections = int(opts.number('rpc-max-connections', 64, integer=True, minimum=1))
    _resolve_ids(opts, s)
    _mule_settings(opts, s)
    date = opts.last('log-date')
    if date is True or (isinstance(date, str) and date.strip().lower() in ('true', '1', 'on', 'yes', '')):
        s.log_date = ''
    elif isinstance(date, str) and date.strip().lower() not in ('false', 'off', 'no', '0'):
        s.log_date = date
    return s


def _mule_settings(opts: Options, s: Settings) -> None:
    """--mules N, --mule[=script] (ids in declaration order, as uWSGI), --farm NAME:1,2."""
    from .options import canonical

    for item in opts.items:
        canon = canonical(item.name)
        if canon == 'mule':
            s.mules.append(None if item.value is True or item.value == '' else str(item.value))
        elif canon == 'mules':
            try:
                n = int(str(item.value))
            except ValueError:
                raise UsageError(f'option --mules must be an integer, got {item.value!r} ({item.origin})') from None
            if n < 0:
                raise UsageError(f'option --mules must be >= 0, got {n} ({item.origin})')
            s.mules.extend([None] * n)
    for raw in opts.strings('farm'):
        name, sep, ids = raw.partition(':')
        if not sep or not name or not ids:
            raise UsageError(f'option --farm needs NAME:MULE_ID[,MULE_ID...], got {raw!r}')
        members: list[int] = []
        for part in ids.split(','):
            try:
                mid = int(part)
            except ValueError:
                raise UsageError(f'option --farm {raw!r}: {part!r} is not a mule id') from None
            if not 1 <= mid <= len(s.mules):
                raise UsageError(
                    f'option --farm {raw!r}: mule {mid} does not exist (mules are 1 to {len(s.mules)})'
                )
            if mid not in members:
                members.append(mid)
        if any(f[0] == name for f in s.farms):
            raise UsageError(f'option --farm: farm {name!r} is given twice')
        s.farms.append((name, members))
    s.mule_msg_size = int(opts.number('mule-msg-size', 65536, integer=True, minimum=1))
    s.mule_harakiri = opts.number('mule-harakiri', 0)
    s.mule_send_timeout = opts.number('mule-send-timeout', 5.0)
    if len(s.mules) > 256:
        raise UsageError(f'at most 256 mules, got {len(s.mules)}')


def _uid_option(value: str) -> int:
    """``--spooler-trusted-user NAME_OR_UID``."""
    import pwd

    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        raise UsageError(f'--spooler-trusted-user {value}: no such user') from None


def _resolve_ids(opts: Options, s: Settings) -> None:
    """--uid/--gid by name or number, as uWSGI takes them; an unknown name is an error."""
    import grp
    import pwd

    uid_raw, gid_raw = opts.last('uid'), opts.last('gid')
    s.no_initgroups = opts.flag('no-initgroups')
    primary: int | None = None
    if uid_raw is not None:
        if uid_raw is True or not str(uid_raw).strip():
            raise UsageError('option --uid needs a user name or number')
        text = str(uid_raw).strip()
        try:
            entry = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
        except KeyError:
            if not text.isdigit():
                raise UsageError(f'--uid: user {text} not found') from None
            s.uid = int(text)  # a uid without a passwd entry: allowed, as in uWSGI
        else:
            s.uid, s.user_name, primary = entry.pw_uid, entry.pw_name, entry.pw_gid
    if gid_raw is not None:
        if gid_raw is True or not str(gid_raw).strip():
            raise UsageError('option --gid needs a group name or number')
        text = str(gid_raw).strip()
        if text.isdigit():
            s.gid = int(text)
        else:
            try:
                s.gid = grp.getgrnam(text).gr_gid
            except KeyError:
                raise UsageError(f'--gid: group {text} not found') from None
    elif s.uid is not None:
        if primary is None:
            raise UsageError(f'--uid {s.uid} has no passwd entry, so no primary group: give --gid too')
        s.gid = primary  # uWSGI would keep the group it started with (root's)


def _path_option(opts: Options, name: str) -> str | None:
    value = opts.last(name)
    if value is None:
        return None
    if value is True or value == '':
        raise UsageError(f'option --{name} needs a file name')
    return os.path.abspath(str(value))


def _str_option(opts: Options, name: str) -> str | None:
    value = opts.last(name)
    if value is True or value == '':
        raise UsageError(f'option --{name} needs a value')
    return value if isinstance(value, str) else None


def _log_option(opts: Options, name: str) -> str | None:
    value = opts.last(name)
    if isinstance(value, str) and ':' in value and not value.startswith(('/', '.')):
        # uWSGI takes HOST:PORT as a UDP log server
        raise UsageError(f'--{name} {value}: logging to a UDP address is not served; give a file path')
    return _path_option(opts, name)


def redirect_output(path: str) -> None:
    """--logto/--logto2: append fds 1 and 2 (so every later child's too) to ``path``, created
    rw-r----- as uWSGI does."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    except OSError as exc:
        raise UsageError(f'cannot open log file {path}: {exc.strerror or exc}') from None
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def setup_log_output(settings: Settings) -> None:
    """Before anything is logged: --logto, and --log-date on every line (the children inherit
    both; see _uwsgidecorators_runtime.log)."""
    if settings.logto and not os.environ.get(ENV_RELOAD):
        redirect_output(settings.logto)  # a reloaded master's fds 1 and 2 are that file already
    _log.setup(settings.log_date)


def write_pidfile(path: str, pid: int) -> None:
    log.info('writing pidfile to %s', path)
    try:
        with open(path, 'w') as fh:
            fh.write(f'{pid}\n')
    except OSError as exc:
        raise UsageError(f'could not write pidfile {path}: {exc.strerror or exc}') from None


def _timer_option(name: str, value: str) -> tuple[int, float]:
    """``--timer "SIG SECS"``: raise signal SIG every SECS seconds (its handler is registered by
    a module, as in uWSGI)."""
    parts = value.split()
    try:
        if len(parts) != 2:
            raise ValueError
        num, secs = int(parts[0]), float(parts[1])
        if num < 0 or num > 255 or not secs > 0 or secs == float('inf'):
            raise ValueError
    except ValueError:
        raise UsageError(f'--{name} needs "SIGNUM SECONDS" (0..255 and a number > 0), got {value!r}') from None
    return num, secs


def import_target(target: str) -> ModuleType:
    """``--import``: a module name (``pkg.tasks``) or a Python file (``tasks.py``, ``/x/y.py``)."""
    if target.endswith('.py') or os.sep in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise ImportError(f'no such Python file: {path}')
        name = os.path.splitext(os.path.basename(path))[0]
        from importlib.util import module_from_spec, spec_from_file_location

        spec = spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f'cannot import {path}')
        module = module_from_spec(spec)
        # Registered under its stem so pickled references to its classes resolve by name.
        sys.modules.setdefault(name, module)
        spec.loader.exec_module(module)
        return module
    __import__(target)  # (not importlib.import_module: the importlib package is one more module)
    return sys.modules[target]


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _inherited_state() -> dict[str, Any] | None:
    """What the master that re-executed this one handed over (``ENV_RELOAD``), taken out of the
    environment so that no child and no later reload sees it."""
    raw = os.environ.pop(ENV_RELOAD, None)
    if not raw:
        return None
    try:
        import json  # only in a master that a reload executed

        state = json.loads(raw)
        if not isinstance(state, dict) or not {'control', 'control_fd', 'lock_fd'} <= state.keys():
            raise ValueError('missing keys')
    except ValueError as exc:
        log.warning('ignoring %s=%r (%s): starting afresh', ENV_RELOAD, raw, exc)
        return None
    return state


# Run by the import check: the master's sys.path and working directory, django.setup() when
# DJANGO_SETTINGS_MODULE is set, then each --import and --spooler-import target.
_CHECK_SCRIPT = """
import json, os, sys
payload = json.loads(sys.argv[1])
sys.path[:] = payload['path']
if os.environ.get('DJANGO_SETTINGS_MODULE'):
    import django
    django.setup()
from uwsgidecorators.master import import_target
for target in payload['imports']:
    import_target(target)
"""


class _ImportCheck:
    """A subprocess of the same interpreter that imports the task modules, as a new master
    would, before a reload stops anything. The master's loop reaps it (``status``); its output
    goes to an unnamed file read at the end."""

    def __init__(self, why: str, proc: subprocess.Popen[bytes], output: Any, deadline: float) -> None:
        self.why = why
        self.proc = proc
        self.pid = proc.pid
        self.output = output
        self.deadline = deadline
        self.status: int | None = None

    @classmethod
    def start(cls, why: str, s: Settings, now: float) -> _ImportCheck:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in (_config.ENV_CONTROL, _config.ENV_MASTER_PID, ENV_RELOAD)
        }
        env[ENV_RELOAD_CHECK] = '1'
        import json  # these three only when a reload is asked for: children never load them
        import subprocess
        import tempfile

        payload = json.dumps({'path': sys.path, 'imports': [*s.imports, *s.spooler_imports]})
        output = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(
                [sys.executable, '-c', _CHECK_SCRIPT, payload],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                close_fds=True,
            )
        except BaseException:
            output.close()
            raise
        return cls(why, proc, output, now + _CHECK_TIMEOUT)

    def verdict(self, now: float) -> tuple[bool, str, str] | None:
        """None while it runs; else (imports fine, why not, its output)."""
        if self.status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = 0, 0
            if pid == self.pid:
                self.status = status
        if self.status is None:
            if now < self.deadline:
                return None
            self.kill()
            return False, f'still importing after {_CHECK_TIMEOUT:g} s', self._read()
        self.proc.returncode = self.status  # reaped by hand: Popen must not wait for it again
        code = os.waitstatus_to_exitcode(self.status)
        text = self._read()
        if code == 0:
            return True, '', text
        return False, f'exit status {code}', text

    def _read(self) -> str:
        try:
            self.output.seek(0)
            data: bytes = self.output.read()
            return data.decode('utf-8', 'replace')
        finally:
            self.output.close()

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                _pid, self.status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.proc.returncode = -9


class ControlError(Exception):
    """The control socket cannot be set up (another live master uses it, a bad path...)."""


class PrivilegeError(Exception):
    """--uid/--gid could not be carried out: the master stops rather than run on as root."""


class ChildSpec:
    __slots__ = ('kind', 'ident', 'dir_index', 'share', 'script')

    kind: _core.Kind  # SPOOLER, WORKER or MULE
    ident: int  # spooler number (1..), worker id (1..N) or mule id (1..N)
    dir_index: int
    share: tuple[int, int]  # a spooler's (index, count) among its directory's processes
    script: str | None  # a mule's program (--mule=x.py or module:function)

    def __init__(
        self,
        kind: _core.Kind,
        ident: int,
        dir_index: int = -1,
        share: tuple[int, int] = (0, 1),
        script: str | None = None,
    ) -> None:
        self.kind = kind
        self.ident = ident
        self.dir_index = dir_index
        self.share = share
        self.script = script

    def label(self) -> str:
        if self.kind == _core.Kind.ERLANG:
            return 'erlang node'
        return f'{self.kind.label} {self.ident}'


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


def _quiet_fork_hook() -> None:
    """The no-op that stands in for threading's at-fork hook (see ``_fork``)."""


def _fork() -> int:
    """``os.fork()``, without threading's after-fork hook when the master has only its main thread.

    That hook rebuilds threading's bookkeeping for the forking thread, which with no other thread
    is already right in the child (same thread, same ident, no lock held by anyone). Running it is
    the child's first Python after the fork, and on CPython 3.10 and 3.11, whose objects all have
    mortal reference counts, it copies about 0.2 MiB of the master's pages into every child
    (bench/bench_memory.py). With any other thread alive, or on other versions, it runs."""
    import threading

    hook = getattr(threading, '_after_fork', None)
    quiet = (
        sys.version_info[:2] in ((3, 10), (3, 11))
        and isinstance(hook, type(_quiet_fork_hook))
        and hook.__code__.co_argcount == 0
        and not hook.__code__.co_freevars
        and threading.active_count() == 1
        and threading.current_thread() is threading.main_thread()
    )
    if not quiet:
        return os.fork()
    assert hook is not None
    code = hook.__code__
    hook.__code__ = _quiet_fork_hook.__code__
    try:
        return os.fork()
    finally:
        hook.__code__ = code  # in both processes: a later fork of the child runs it again


def _set_parent_death_signal(sig: int) -> None:
    # Linux prctl(PR_SET_PDEATHSIG): if the master is SIGKILLed its children get `sig` and stop
    # after their current task instead of running on as orphans.
    # Through the core: importing ctypes for it cost each child about 0.4 MiB (bench_memory.py).
    try:
        _core.set_parent_death_signal(sig)
    except OSError:  # refused: orphans are then reaped by the supervisor
        pass


class Master:
    def __init__(self, settings: Settings, reexec_argv: list[str] | None = None) -> None:
        from _uwsgidecorators_runtime import _core

        self.s = settings
        self.specs: list[ChildSpec] = []
        number = 0
        for index, _directory in enumerate(settings.spoolers):
            if index in settings.external:
                continue
            for share in range(settings.spooler_processes):
                number += 1
                self.specs.append(ChildSpec(_core.Kind.SPOOLER, number, index, (share, settings.spooler_processes)))
        for wid in range(1, settings.workers + 1):
            self.specs.append(ChildSpec(_core.Kind.WORKER, wid))
        for mid, script in enumerate(settings.mules, 1):
            self.specs.append(ChildSpec(_core.Kind.MULE, mid, script=script))
        if settings.erlang:
            self.specs.append(ChildSpec(_core.Kind.ERLANG, 1))
        self.sup: Any = _core.Supervisor(
            # a spooler that exits 0 recycled itself (--spooler-max-tasks): respawned at once
            [(spec.label(), spec.kind == _core.Kind.SPOOLER) for spec in self.specs],
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
        self.region: Any = None
        """the shared region (``_core.Region``): process table, direct routes, locks"""
        self.ml: Any = None
        """the signal loop (``_core.MasterLoop``); a child closes its copy with ``close_in_child``
        (which leaves the master's control socket file in place)"""
        self.runtime_dir: str | None = None
        self.control: str | None = None
        """the control socket's path"""
        self.control_dir: str | None = None
        """the directory this master made (or keeps 0700) for its control socket"""
        self._control_lock = -1
        self._control_lock_path: str | None = None
        self.channels: dict[int, socket.socket] = {}
        """slot -> the master's end of that child's private signal channel"""
        self.queues: dict[str, tuple[socket.socket, socket.socket]] = {}
        """kind -> (write end kept by the master, read end shared by the children of that kind)"""
        self.farm_queues: dict[str, tuple[socket.socket, socket.socket]] = {}
        """farm -> (write end kept by the master, read end shared by the farm's mules)"""
        self.mule_queues: Any = None
        """the mule message queues (``_core.MuleQueues``, a file next to the control socket)"""
        self.rpc_socks: list[socket.socket] = []
        """the RPC listeners, bound before any fork: the private ``<control>.rpc`` (for
        processes the master did not fork) and each --socket; every worker accepts on them"""
        self.rpc_addrs: list[str] = []
        """the address of each of ``rpc_socks`` (handed over by a reload)"""
        self.rpc_paths: list[str] = []
        """Unix socket files of ``rpc_socks``, removed at exit"""
        self.events = _EventLog()
        self.dropped = False
        """privileges were dropped (--uid/--gid)"""
        # -- reload
        self.orig_cwd = os.getcwd()
        self.orig_env = {k: v for k, v in os.environ.items() if k != ENV_RELOAD}
        """where and with what environment a reload re-executes the master (as it started)"""
        self.inherited: dict[str, Any] | None = _inherited_state()
        """what the master that re-executed this one handed over (None at a first start)"""
        self.reload_requests: list[str] = []
        """reload requests (SIGHUP, uwsgi.reload(), touched files) not yet acted on"""
        self.check: _ImportCheck | None = None
        """the import check running before a reload"""
        self.reexec = False
        """the supervisor answered Reload: re-execute instead of exiting"""
        self.reexec_argv = reexec_argv
        """the command a reload executes again (the ``uwsgidecorators`` command gives its own);
        None: a master run from other code cannot re-execute itself, so it refuses reloads"""
        self.touched: dict[int, tuple[str, str, int | None]] = {}
        """file hook id -> (what, path, mtime in ns or None when missing)"""
        self.autoreload_at = 0.0
        self.module_mtimes: dict[str, int] = {}

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
        os.environ[_config.ENV_MASTER_PID] = str(self.pid)
        if s.durable:
            os.environ[_config.ENV_DURABLE] = '1'
        else:
            os.environ.pop(_config.ENV_DURABLE, None)
        if s.opt is None:
            os.environ[_config.ENV_OPT] = s.opt_json
        else:
            os.environ.pop(_config.ENV_OPT, None)  # not decoded again (that would load json)
        _config.reset()
        st = _config.state()
        if s.opt is not None:
            st.opt = dict(s.opt)
            os.environ[_config.ENV_OPT] = s.opt_json  # for the processes that exec: the reload check, a user's
        st.role = 'master'

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
        from _uwsgidecorators_runtime import _core

        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        test_clock = os.environ.get(_config.ENV_TEST_CLOCK, '') == '1'
        inherited = self.inherited
        if inherited is not None:
            # a reload: the socket (and the datagrams sent during the exec) and its lock carry on
            control = str(inherited['control'])
            self.control_dir = inherited.get('control_dir')
            self.runtime_dir = inherited.get('runtime_dir')
            self._adopt_lock(control, int(inherited['lock_fd']))
            self._open_region(control, inherited.get('region'))
            try:
                self.ml = _core.MasterLoop(
                    control,
                    wakeup_fd=self._wake_r,
                    test_clock=test_clock,
                    control_fd=int(inherited['control_fd']),
                    region=self.region,
                )
            except OSError as exc:
                raise ControlError(f'cannot take over the control socket {control}: {exc.strerror or exc}') from None
        else:
            control = self._control_place()
            self._lock_control(control)
            self._open_region(control, None)
            old_umask = os.umask(0o077)  # the socket is born 0600: nobody else may raise signals
            try:
                self.ml = _core.MasterLoop(control, wakeup_fd=self._wake_r, test_clock=test_clock, region=self.region)
            except OSError as exc:
                raise ControlError(f'cannot bind the control socket {control}: {exc.strerror or exc}') from None
            finally:
                os.umask(old_umask)
            os.chmod(control, 0o600)
        self.control = control
        os.environ[_config.ENV_CONTROL] = control
        for kind in (_core.Kind.WORKER, _core.Kind.SPOOLER, _core.Kind.MULE):
            write_end, read_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            write_end.setblocking(False)
            read_end.setblocking(False)
            self.ml.add_queue(kind.label, write_end.fileno())
            self.queues[kind.label] = (write_end, read_end)
        if self.s.mules:
            self._open_mule_queues(control)
        _signals.attach_master(self.ml)
        log.info('signal control socket: %s', control)
        self._bind_rpc(control)
        if test_clock:
            log.warning(
                '*** test clock on (%s=1): control datagrams may move the cron clock ***', _config.ENV_TEST_CLOCK
            )

    def _open_mule_queues(self, control: str) -> None:
        """The farms' signal queues and the mule message queues (``<control>.mules``, 0600),
        before any fork; messages a previous master left there are kept."""
        from _uwsgidecorators_runtime import mules as _mules

        from ._roles import mule  # noqa: F401  (the mules' role, loaded once here for all of them)

        s = self.s
        for name, members in s.farms:
            write_end, read_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            write_end.setblocking(False)
            read_end.setblocking(False)
            self.ml.add_farm(name, members, write_end.fileno())
            self.farm_queues[name] = (write_end, read_end)
        old_umask = os.umask(0o077)
        try:
            self.mule_queues, waiting = _core.MuleQueues.create(
                control, len(s.mules), s.farms, s.mule_msg_size, s.mule_send_timeout
            )
        except (OSError, ValueError) as exc:
            raise ControlError(f'cannot set up the mule queues next to {control}: {exc}') from None
        finally:
            os.umask(old_umask)
        _mules.set_queues(self.mule_queues)
        log.info('mule queues: %s (%d mule(s), farms: %s)', self.mule_queues.path, len(s.mules),
                 ', '.join(f'{n}:{",".join(map(str, m))}' for n, m in s.farms) or 'none')
        if waiting:
            log.warning('%d mule message(s) left by a previous master are queued again', waiting)

    def _open_region(self, control: str, handed: str | None) -> None:
        """The shared region next to the control socket (0600; a killed master's is replaced),
        published in the environment for the children and derivable from the control path for
        attached processes. After a reload (``handed``: the path the previous master used) the
        same file is adopted: locks held by attached processes stay held and their waiters keep
        waiting on the same memory; only the process table is cleared (every child is gone)."""
        path = _region.region_path(control)
        nslots, nlocks = len(self.specs), self.s.locks + 1
        self.region = None
        if handed is not None:
            try:
                region = _core.Region.open(handed)
            except OSError as exc:
                log.warning('the shared region %s cannot be adopted (%s): made afresh', handed, exc.strerror or exc)
            else:
                if os.fsdecode(handed) != path:
                    log.warning('the shared region %s is not next to the control socket: made afresh', handed)
                elif (region.nslots, region.nlocks) != (nslots, nlocks):
                    log.warning(
                        'the shared region %s holds %d slots and %d locks, %d and %d are needed now: made afresh '
                        '(locks held across the reload are lost)',
                        handed,
                        region.nslots,
                        region.nlocks,
                        nslots,
                        nlocks,
                    )
                else:
                    region.reset_table()
                    self.region = region
        if self.region is None:
            try:
                self.region = _core.Region.create(path, nslots, nlocks)
            except OSError as exc:
                raise ControlError(f'cannot create the shared region {path}: {exc.strerror or exc}') from None
        self.table = SharedTable(self.region)
        st = _config.state()
        st.region = self.region
        st.table = self.table
        os.environ[_config.ENV_REGION] = path

    def _bind_rpc(self, control: str) -> None:
        """Bind the RPC listeners before any fork (the workers inherit and serve them): always
        ``<control>.rpc`` (0600, for processes the master did not fork), and each --socket. After
        a reload the listeners the previous master handed over are taken as they are, so clients
        that connect meanwhile wait in their backlog instead of being refused."""
        from _uwsgidecorators_runtime import rpc as _rpc

        handed: dict[str, int] = dict((self.inherited or {}).get('rpc_fds') or {})

        def listen(address: str) -> int:
            fd = handed.pop(address, None)
            if fd is not None:
                os.set_inheritable(fd, False)
                return fd
            return int(_core.rpc_listen(address, self.s.listen))

        private = _rpc.master_socket_path(control)
        old_umask = os.umask(0o077)
        try:
            fd = listen(private)
        except OSError as exc:
            raise ControlError(f'cannot bind the RPC socket {private}: {exc.strerror or exc}') from None
        finally:
            os.umask(old_umask)
        self.rpc_socks.append(socket.socket(fileno=fd))
        self.rpc_addrs.append(private)
        self.rpc_paths.append(private)
        for address in self.s.rpc_sockets:
            try:
                fd = listen(address)
            except OSError as exc:
                raise ControlError(
                    f'cannot bind --socket {address}: {exc.strerror or exc} (is a uWSGI instance or another '
                    'server using it? this master serves uWSGI RPC there; drop the option if the socket was '
                    "meant for your web server's uwsgi_pass)"
                ) from None
            self.rpc_socks.append(socket.socket(fileno=fd))
            self.rpc_addrs.append(address)
            if ':' not in address:
                self.rpc_paths.append(address)
            log.info(
                'uwsgi socket %s: serving uWSGI RPC (modifier1 173) in the workers; other requests '
                "(a web server's uwsgi_pass) are closed",
                address,
            )
        for address, fd in handed.items():  # a socket the new options no longer name
            try:
                os.close(fd)
            except OSError:
                pass
            if ':' not in address:
                try:
                    os.unlink(address)
                except OSError:
                    pass
        if self.s.workers == 0:
            log.warning('no workers (--processes 0): RPC calls to this master get no answer')

    def _control_place(self) -> str:
        """--control-socket PATH; else ``<first spool dir>/.uwsgidecorators/control``, where
        attached processes that know the spool dir find it; else a private temporary directory
        (removed at exit). The directory is created 0700; the default one is kept 0700."""
        s = self.s
        if s.control:
            control = s.control
            parent = os.path.dirname(control)
            if not os.path.isdir(parent):
                try:
                    os.makedirs(parent, mode=0o700)
                except OSError as exc:
                    why = exc.strerror or exc
                    raise ControlError(f'cannot create {parent} for the control socket: {why}') from None
                self.control_dir = parent
            return control
        if not s.spoolers:
            self.runtime_dir = _make_runtime_dir()
            self.control_dir = self.runtime_dir
            return os.path.join(self.runtime_dir, 'control')
        control = _signals.default_control_path(s.spoolers[0])
        parent = os.path.dirname(control)
        try:
            os.mkdir(parent, 0o700)
        except FileExistsError:
            st = os.lstat(parent)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (os.geteuid(), s.uid):
                raise ControlError(
                    f'{parent} is not a directory of this user: remove it or give --control-socket'
                ) from None
            os.chmod(parent, 0o700)
        except OSError as exc:
            raise ControlError(f'cannot create {parent} for the control socket: {exc.strerror or exc}') from None
        self.control_dir = parent
        return control

    def _lock_control(self, control: str) -> None:
        """One live master per control socket: a lock on ``<socket>.lock`` (held until this
        master exits, released by the kernel if it is killed), so a socket left by a killed
        master is simply replaced and a second master on the same path stops with an error.
        The lock file is removed at exit (while still locked); a master that locked a file just
        removed that way sees that the name no longer leads to it and tries again."""
        path = control + '.lock'
        for _attempt in range(5):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except FileNotFoundError:
                # the directory went with a master that was just leaving
                try:
                    os.mkdir(os.path.dirname(path), 0o700)
                except OSError:
                    pass
                continue
            except OSError as exc:
                raise ControlError(f'cannot open {path}: {exc.strerror or exc}') from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = os.read(fd, 32).decode(errors='replace').strip() or '?'
                os.close(fd)
                raise ControlError(
                    f'another uwsgidecorators master (pid {other}) is running with the control socket {control}: '
                    'stop it first, or give this one another --control-socket'
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f'{self.pid}\n'.encode())
            self._control_lock = fd
            self._control_lock_path = path
            return
        raise ControlError(f'cannot take the lock {path}: it keeps being replaced')

    def _adopt_lock(self, control: str, fd: int) -> None:
        """A reload: the lock on ``<socket>.lock`` taken by this same process before its exec."""
        path = control + '.lock'
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except OSError:
            same = False
        if not same:
            raise ControlError(f'the lock {path} was not handed over by the reload')
        os.set_inheritable(fd, False)
        self._control_lock = fd
        self._control_lock_path = path

    def _close_loop(self) -> None:
        _signals.detach_master()
        for sock in self.rpc_socks:
            sock.close()
        self.rpc_socks.clear()
        self.rpc_addrs.clear()
        for path in self.rpc_paths:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.rpc_paths.clear()
        for sock in self.channels.values():
            sock.close()
        self.channels.clear()
        for write_end, read_end in [*self.queues.values(), *self.farm_queues.values()]:
            write_end.close()
            read_end.close()
        self.queues.clear()
        self.farm_queues.clear()
        if self.mule_queues is not None and os.getpid() == self.pid:
            try:
                left = self.mule_queues.retire_if_empty()
            except (OSError, ValueError) as exc:
                log.error('mule queues: %s', exc)
            else:
                if left and self.runtime_dir:
                    log.error('%d mule message(s) not run are lost with the temporary directory %s '
                              '(give --control-socket or a --spooler to keep them for the next start)',
                              left, self.runtime_dir)
                elif left:
                    log.warning('%d mule message(s) not run are kept in %s for the next master', left,
                                self.mule_queues.path)
            self.mule_queues = None
        self.ml = None  # the last reference: the loop closes its fds and removes the control socket
        os.environ.pop(_config.ENV_CONTROL, None)
        os.environ.pop(_config.ENV_REGION, None)
        if self.region is not None and not self.runtime_dir:
            try:
                self.region.remove()
            except OSError:
                pass
        if self.control and not self.runtime_dir:
            # what this master left next to its socket, so the directory is left as found:
            # the workers' direct sockets, the lock (removed while still held), the directory
            for wid in range(1, self.s.workers + 1):
                try:
                    os.unlink(_core_direct_socket_path(self.control, wid))
                except OSError:
                    pass
            for mid in range(1, len(self.s.mules) + 1):
                try:
                    os.unlink(_core.mule_wake_path(self.control, mid))
                except OSError:
                    pass
            if self._control_lock_path:
                try:
                    os.unlink(self._control_lock_path)
                except OSError:
                    pass
        if self._control_lock >= 0:
            os.close(self._control_lock)
            self._control_lock = -1
        if self.control_dir and not self.runtime_dir:
            try:
                os.rmdir(self.control_dir)  # only when empty
            except OSError:
                pass
        if self.runtime_dir:
            import shutil  # here, not at the top: every child would carry it (bench_memory.py)

            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            self.runtime_dir = None
        self.control = self.control_dir = self._control_lock_path = None
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

    def _on_stop_while_starting(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requests:
            raise KeyboardInterrupt(f'second {signal.Signals(signum).name} while importing the task modules')
        self.stop_requests.append(signum)

    def _on_child(self, signum: int, frame: FrameType | None) -> None:
        pass  # the wakeup fd already woke the loop; reaping happens there

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requests.append('SIGHUP received')  # acted on by the loop (the wake-up fd woke it)

    # -- run --------------------------------------------------------------------------------
    def run(self) -> int:
        self._prepare_process()
        dirs = ', '.join(
            os.fsdecode(d) + (' (external)' if i in self.s.external else '') for i, d in enumerate(self.s.spoolers)
        )
        if self.inherited is not None:
            log.info('gracefully (RE)spawned uwsgidecorators master (pid: %d)', self.pid)
        else:
            log.info('*** uwsgidecorators master (pid: %d) starting ***', self.pid)
        log.info('spoolers: %s; workers: %d', dirs or 'none', self.s.workers)
        try:
            if self.s.pidfile and not self._pidfile_current(self.s.pidfile):
                write_pidfile(self.s.pidfile, self.pid)
            try:
                self._open_loop()
                self._drop_privileges()
            except (ControlError, PrivilegeError) as exc:
                log.error('%s: the master stops', exc)
                return 1
            self._after_root()
            # A stop that comes while the task modules import (a service manager's SIGTERM, a
            # Ctrl-C) is recorded and honoured once they are in, instead of killing the master
            # by the signal's default action; a second one interrupts the import itself.
            signal.signal(signal.SIGTERM, self._on_stop_while_starting)
            signal.signal(signal.SIGINT, self._on_stop_while_starting)
            try:
                self._import_modules()
                self._add_option_timers()
            except Exception:
                log.error('import failed, the master stops:\n%s', format_exc())
                return 1
            try:
                self._add_reload_watches()
            except UsageError as exc:
                log.error('%s: the master stops', exc)
                return 1
            self._install_signals()
            try:
                code = self._supervise()
            finally:
                signal.set_wakeup_fd(-1)
            if self.reexec:
                self._reexec()  # returns only if the exec failed
                return 1
            log.info('goodbye to uwsgidecorators (pid: %d)', self.pid)
            return code
        finally:
            if self.check is not None:
                self.check.kill()
            self._close_loop()
            self._vacuum()

    def _drop_privileges(self) -> None:
        """--uid/--gid, in uWSGI's order, in the master before the task modules are imported and
        before any fork: what needs root is made by now (spool dirs, pidfile, log file, the
        control socket and the shared table), and what the children must use is given to the
        new owner first. Any failure stops the master: it never runs on as root."""
        s = self.s
        if s.uid is None and s.gid is None:
            return
        if self.inherited is not None and self.inherited.get('dropped'):
            self.dropped = True  # done before the reload; the exec keeps the ids
            return
        uid = os.getuid() if s.uid is None else s.uid
        gid = os.getgid() if s.gid is None else s.gid
        # Given to the new owner, so the processes keep using them after the drop.
        paths: list[bytes | str] = [*s.created_dirs, *self._owned_paths()]
        for path in paths:
            try:
                os.chown(path, uid, gid)
            except OSError as exc:
                why = exc.strerror or exc
                raise PrivilegeError(f'cannot give {os.fsdecode(path)} to uid {uid} gid {gid}: {why}') from None
        # What this process and its children import lazily (pickle: pass_arguments and mule calls;
        # shutil: the master's cleanup at exit; tempfile, subprocess, json: a reload's import check;
        # traceback: a logged exception; runpy: a mule script...) is imported now, while the
        # interpreter's files are surely readable: the new user may not read a root-only Python's
        # standard library. (The children then carry them, which they otherwise do not; see
        # bench/bench_memory.py.)
        for name in ('pickle', 'shutil', 'tempfile', 'subprocess', 'json', 'traceback', 'runpy', 'importlib.util',
                     'numbers', 'struct', 'warnings', 're', 'difflib'):
            __import__(name)
        try:
            if s.gid is not None:
                os.setgid(gid)
                log.info('setgid() to %d', gid)
                if s.uid is None or s.no_initgroups:
                    os.setgroups([])
                else:
                    os.initgroups(s.user_name or str(uid), gid)
            if s.uid is not None:
                os.setuid(uid)
                log.info('setuid() to %d', uid)
        except OSError as exc:
            raise PrivilegeError(f'cannot drop privileges to uid {uid} gid {gid}: {exc.strerror or exc}') from None
        self.dropped = True
        groups = [g for g in os.getgroups() if g != gid]
        if groups:
            log.info('supplementary groups: %s', ', '.join(str(g) for g in groups))
        # A spool dir the new user cannot use would fail task after task: say so now.
        for index, directory in enumerate(s.spoolers):
            if index in s.external:
                continue
            if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
                raise PrivilegeError(
                    f'spooler directory {os.fsdecode(directory)} is not readable and writable by uid {uid} '
                    f'gid {gid}: give it to that user (chown) or pick another directory'
                )

    def _owned_paths(self) -> list[str]:
        """The control socket, its lock, the shared region (attached processes of that user map
        it) and the socket's directory when this master made it (workers bind their direct
        sockets there)."""
        out = []
        if self.control_dir:
            out.append(self.control_dir)
        if self.control:
            out.append(self.control)
        if self._control_lock_path:
            out.append(self._control_lock_path)
        if self.mule_queues is not None:
            out.append(self.mule_queues.path)
        if self.region is not None and self.region.path is not None:
            out.append(os.fsdecode(self.region.path))
        return out

    def _after_root(self) -> None:
        """What uWSGI does once privileges are dropped: --logto2, then --pidfile2."""
        if self.s.logto2 and self.inherited is None:  # after a reload fds 1 and 2 are that file
            redirect_output(self.s.logto2)
        if self.s.pidfile2 and not self._pidfile_current(self.s.pidfile2):
            write_pidfile(self.s.pidfile2, self.pid)

    def _pidfile_current(self, path: str) -> bool:
        """After a reload, a pidfile that holds this pid already is left alone (the master kept
        its pid; rewriting --pidfile may need the root it gave up)."""
        if self.inherited is None:
            return False
        try:
            with open(path) as fh:
                return fh.read().strip() == str(self.pid)
        except OSError:
            return False

    def _vacuum(self) -> None:
        """--vacuum, as uWSGI's: remove the pidfiles this master wrote; --pidfile (written as
        root) only when privileges were not dropped."""
        if not self.s.vacuum:
            return
        for path, what in ((self.s.pidfile, 'pidfile'), (self.s.pidfile2, 'pidfile2')):
            if not path or (what == 'pidfile' and self.dropped):
                continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.error('VACUUM: cannot remove %s %s: %s', what, path, exc.strerror or exc)
            else:
                log.info('VACUUM: %s removed.', what)

    def _supervise(self) -> int:
        """Feed the supervisor until it says exit. Each turn: reap, stop requests, harakiri,
        time; then wait in the signal loop until something happens or the supervisor's next
        deadline (a respawn, the end of mercy)."""
        self._report_stops()  # a stop before the start: nothing is spawned
        self._apply(self.sup.start(time.monotonic()))
        while self.exit_code is None:
            # Stops first: a SIGINT or SIGTERM sent to the whole process group (Ctrl-C, systemd's
            # KillMode=control-group) also ends the children, and the stop must be known before
            # their exits are, or they would be respawned (and their @postfork hooks run again).
            self._report_stops()
            self._reap()
            self._check_harakiri()
            self._report_reloads()
            self._scan_modules()
            self._apply(self.sup.tick(time.monotonic()))
            if self.exit_code is None:
                self._sleep(self._timeout())
        return self.exit_code

    def _apply(self, actions: Iterable[_core.Action]) -> None:
        """Carry out the supervisor's answer (``_core.Action``: Spawn, Term, Kill, Log, Exit)."""
        for action in actions:
            match action:
                case _core.Action.Spawn(slot):
                    self._spawn(slot)
                case _core.Action.Term(pid):
                    self._signal_child(pid, signal.SIGTERM)
                case _core.Action.Kill(pid):
                    self._signal_child(pid, signal.SIGKILL)
                case _core.Action.Log(level, message):
                    log.log(_LEVELS.get(level, _log.WARNING), '%s', message)
                case _core.Action.Exit(code):
                    self.exit_code = code
                case _core.Action.Reload():
                    self.reexec = True
                    self.exit_code = 0
                case _:
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
        if self.s.py_autoreload > 0:
            timeout = min(timeout, max(0.0, self.autoreload_at - time.monotonic()))
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
            if kind == 'file_hook':
                self._file_hook(num)
                continue
            if kind == 'reload':
                self.reload_requests.append(f'uwsgi.reload() called (pid {num})')
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
        table.claim(slot, 0, spec.kind.code, spec.ident, spec.dir_index)
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
        old_mask = _roles.pthread_sigmask(signal.SIG_BLOCK, _HELD_ACROSS_FORK)
        try:
            pid = _fork()
        except OSError as exc:
            # Out of processes or memory: the supervisor retries after its back-off.
            _roles.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            chan_master.close()
            chan_child.close()
            table.release(slot)
            self._apply(self.sup.spawn_failed(slot, str(exc), time.monotonic()))
            return
        except BaseException:
            _roles.pthread_sigmask(signal.SIG_SETMASK, old_mask)
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
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        _roles.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        chan_child.close()
        self.channels[slot] = chan_master
        if spec.kind != _core.Kind.ERLANG:  # the node takes no signals
            self.ml.add_channel(spec.kind.label, spec.ident, chan_master.fileno())
        table.put(slot, F_PID, pid)
        self.children[pid] = slot
        if spec.kind == _core.Kind.SPOOLER:
            directory = os.fsdecode(self.s.spoolers[spec.dir_index])
            log.info('spawned the uWSGI spooler on dir %s with pid %d', directory, pid)
        elif spec.kind == _core.Kind.MULE:
            log.info('spawned uWSGI mule %d (pid: %d)', spec.ident, pid)
        elif spec.kind == _core.Kind.ERLANG:
            log.info('spawned the Erlang node %s (pid: %d)', self.s.erlang, pid)
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
            # The kernel queued a group signal on the master before any child it killed could be
            # reaped, and its C-level handler ran when waitpid returned; calling a Python function
            # runs the Python handler, so a stop is reported before this exit is.
            self._report_stops()
            if self.check is not None and pid == self.check.pid:
                self.check.status = status  # the import check (reaped here, read by _report_reloads)
                continue
            slot = self.children.pop(pid, None)
            if slot is None:
                continue  # a grandchild adopted through a subreaper: not the supervisor's
            spec = self.specs[slot]
            assert self.table is not None
            self.table.release(slot)
            # Signals for it are reported as unrouted until it is back.
            if spec.kind != _core.Kind.ERLANG:
                self.ml.remove_channel(spec.kind.label, spec.ident)
            chan = self.channels.pop(slot, None)
            if chan is not None:
                chan.close()
            if spec.kind == _core.Kind.MULE and self.mule_queues is not None:
                # What it was running is queued again (run at least once; every other message
                # of its queues stays where it was).
                requeued, dropped = self.mule_queues.reclaim(spec.ident, pid)
                if requeued:
                    log.warning('mule %d (pid %d) died running a message: queued again', spec.ident, pid)
                if dropped:
                    log.error(
                        'mule %d (pid %d) died running a message that has now killed %d mules: dropped',
                        spec.ident,
                        pid,
                        3,
                    )
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
            elif spec.kind == _core.Kind.SPOOLER:
                what = 'task or signal handler (--spooler-harakiri)'
            elif spec.kind == _core.Kind.WORKER:
                what = 'signal handler (--harakiri)'
            elif spec.kind == _core.Kind.MULE:
                what = 'signal handler or message (--mule-harakiri)'
            else:
                what = 'harakiri'
            if spec.kind == _core.Kind.MULE and self.mule_queues is not None and self.mule_queues.drop_claims(pid):
                # as in uWSGI the message is lost: run again, it would be killed again
                log.error('mule %d (pid %d): harakiri, the message it was running is dropped', spec.ident, pid)
            if spec.kind == _core.Kind.SPOOLER:  # the task it holds: a failed attempt (before the kill)
                fail_task_before_harakiri(
                    table,
                    slot,
                    pid,
                    self.s.spoolers[spec.dir_index],
                    what=what,
                    retry_delay=self.s.retry_delay,
                    retry_max_delay=self.s.retry_max_delay,
                    max_attempts=self.s.max_attempts,
                )
            function = table.name(slot, fld)
            self._apply(self.sup.harakiri(slot, pid, time.monotonic(), what, function))

    # -- reload -----------------------------------------------------------------------------
    def _report_reloads(self) -> None:
        """Act on reload requests: start the import check, and once it is over either hand the
        reload to the supervisor or log why not (the children keep running)."""
        check = self.check
        if check is not None:
            verdict = check.verdict(time.monotonic())
            if verdict is None:
                return  # still importing
            self.check = None
            ok, why, output = verdict
            if not ok:
                log.error(
                    '%s: reload cancelled, the task modules do not import (%s); the running processes are kept:\n%s',
                    check.why,
                    why,
                    output.rstrip() or '(no output)',
                )
            elif self.stopping:
                log.info('%s: the master is stopping, no reload', check.why)
            else:
                log.info('%s: the task modules import, reloading', check.why)
                self.stopping = True  # the children go away: their channels close, and so on
                self._apply(self.sup.reload(time.monotonic(), check.why))
        if self.reload_requests and self.check is None:
            why = self.reload_requests.pop(0)
            if self.reload_requests:
                log.info('%s (and %d more request(s) in the meantime)', why, len(self.reload_requests))
                self.reload_requests.clear()
            if self.stopping or self.reexec:
                log.info('%s: the master is already stopping, no reload', why)
                return
            if not self.reexec_argv:
                log.error(
                    '%s: this master was not started by the uwsgidecorators command, so it cannot '
                    're-execute itself: no reload',
                    why,
                )
                return
            log.info('%s: checking that the task modules import before reloading', why)
            try:
                self.check = _ImportCheck.start(why, self.s, time.monotonic())
            except OSError as exc:
                log.error(
                    '%s: cannot run %s for the import check (%s): no reload, the running processes are kept',
                    why,
                    sys.executable,
                    exc.strerror or exc,
                )

    def _add_reload_watches(self) -> None:
        """--touch-reload / --touch-spoolers-reload on the loop's own file monitor (inotify);
        what counts is the file's mtime (or its coming or going), as in uWSGI."""
        hook = 0
        for what, paths in (('reload', self.s.touch_reload), ('spoolers', self.s.touch_spoolers_reload)):
            for path in paths:
                hook += 1
                mtime = _mtime_ns(path)
                watched = path
                if mtime is None:
                    log.warning('unable to stat() %s, events will be triggered as soon as the file is created', path)
                    watched = os.path.dirname(path) or '.'
                try:
                    self.ml.add_file_hook(hook, watched)
                except Exception as exc:  # the monitor's error names the path and the reason
                    option = '--touch-reload' if what == 'reload' else '--touch-spoolers-reload'
                    raise UsageError(f'{option} {path}: {exc}') from None
                self.touched[hook] = (what, path, mtime)
        if self.s.py_autoreload > 0:
            self.module_mtimes = self._module_mtimes()
            self.autoreload_at = time.monotonic() + self.s.py_autoreload
            log.info(
                'Python auto-reloader enabled: every %g s, %d module files',
                self.s.py_autoreload,
                len(self.module_mtimes),
            )

    def _file_hook(self, hook: int) -> None:
        entry = self.touched.get(hook)
        if entry is None:
            return
        what, path, before = entry
        now = _mtime_ns(path)
        if now == before:
            return  # another file of the directory, or no change of the mtime
        self.touched[hook] = (what, path, now)
        if what == 'reload':
            self.reload_requests.append(f'*** {path} has been touched... grace them all !!! ***')
        elif not self.stopping:
            log.info('*** %s has been touched... spoolers reload !!! ***', path)
            slots = [i for i, spec in enumerate(self.specs) if spec.kind == _core.Kind.SPOOLER]
            self._apply(self.sup.restart(slots, time.monotonic(), f'{path} touched'))

    def _module_mtimes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        ignore = set(self.s.py_autoreload_ignore)
        for name, module in list(sys.modules.items()):
            if name in ignore:
                continue
            path = getattr(module, '__file__', None)
            if not isinstance(path, str):
                continue
            if path.endswith(('.pyc', '.pyo')):
                path = path[:-1]
            mtime = _mtime_ns(path)
            if mtime is not None:
                out[path] = mtime
        return out

    def _scan_modules(self) -> None:
        """--py-autoreload: every N seconds, a changed file of an imported module asks for a
        reload (uWSGI's reloader thread does the same scan of sys.modules)."""
        if self.s.py_autoreload <= 0 or time.monotonic() < self.autoreload_at:
            return
        self.autoreload_at = time.monotonic() + self.s.py_autoreload
        if self.stopping or self.check is not None:
            return
        for path, mtime in self.module_mtimes.items():
            if _mtime_ns(path) != mtime:
                log.info('[uwsgi-python-reloader] module/file %s has been modified', path)
                self.module_mtimes = self._module_mtimes()
                self.reload_requests.append(f'{path} modified (--py-autoreload)')
                return

    def _reexec(self) -> None:
        """Every child is gone: execute the same command again in this process (same pid), from
        the directory and with the environment the master started with, handing over the control
        socket and its lock (their descriptors and paths in ENV_RELOAD)."""
        log.info('binary reloading uwsgidecorators...')
        state: dict[str, Any] = {
            'control': self.control,
            'control_dir': self.control_dir,
            'runtime_dir': self.runtime_dir,
            'dropped': self.dropped,
            # the region is adopted, not made again: locks held by attached processes survive
            'region': os.fsdecode(self.region.path) if self.region is not None and self.region.path else None,
        }
        try:
            state['control_fd'] = self.ml.keep_control_across_exec()
            os.set_inheritable(self._control_lock, True)
            state['lock_fd'] = self._control_lock
            # The RPC listeners too: their backlogs keep the calls that come during the reload.
            for sock in self.rpc_socks:
                os.set_inheritable(sock.fileno(), True)
            state['rpc_fds'] = {a: sock.fileno() for a, sock in zip(self.rpc_addrs, self.rpc_socks, strict=True)}
            env = dict(self.orig_env)
            import json

            env[ENV_RELOAD] = json.dumps(state)
            argv = list(self.reexec_argv or ())
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the new master handles it
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.chdir(self.orig_cwd)
            log.info('running %s', ' '.join(argv))
            _log.flush()
            sys.stdout.flush()
            os.execve(sys.executable, argv, env)
        except OSError as exc:
            log.error('reload failed: cannot execute %s (%s); the master stops', sys.executable, exc.strerror or exc)
            if self.control:
                try:
                    os.unlink(self.control)  # the loop no longer removes it once handed over
                except OSError:
                    pass

    # -- inside a child ---------------------------------------------------------------------
    def _child_main(self, slot: int, spec: ChildSpec, sigmask: Iterable[int], chan: socket.socket) -> int:
        signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._control_lock >= 0:
            os.close(self._control_lock)  # the lock is the master's alone: it ends with the master
            self._control_lock = -1
        # The master's signal plumbing is not ours: keep only this child's channel and the read end
        # of its kind's queue. The loop's descriptors are closed; its control socket file stays.
        # The direct sender (its own socket, the shared table) outlives the loop's copy.
        direct = self.ml.direct_sender() if self.ml is not None else None
        # A worker reads the file monitors aimed at it (or at any worker) itself: one hop.
        monitors = (
            self.ml.worker_monitors(spec.ident) if self.ml is not None and spec.kind == _core.Kind.WORKER else None
        )
        _signals.detach_master(direct)
        if self.ml is not None:
            self.ml.close_in_child()
            self.ml = None
        for other in self.channels.values():
            other.close()
        kind_name = spec.kind.label
        queue = self.queues[kind_name][1] if kind_name in self.queues else None
        for name, (write_end, read_end) in self.queues.items():
            write_end.close()
            if name != kind_name:
                read_end.close()
        my_farms = [n for n, members in self.s.farms if spec.kind == _core.Kind.MULE and spec.ident in members]
        farm_socks = []
        for name, (write_end, read_end) in self.farm_queues.items():
            write_end.close()
            if name in my_farms:
                farm_socks.append(read_end)
            else:
                read_end.close()
        if spec.kind != _core.Kind.WORKER:
            for sock in self.rpc_socks:
                sock.close()  # only workers serve RPC
        _roles.set_handler(signal.SIGCHLD, _roles.SIG_DFL)
        _roles.set_handler(signal.SIGHUP, _roles.SIG_IGN)
        if spec.kind == _core.Kind.MULE:
            from ._roles.mule import MuleStop, prepare_mule, run_mule  # (loaded by _open_mule_queues)

        stop = MuleStop() if spec.kind == _core.Kind.MULE else StopFlag()
        stop.install()
        if spec.kind == _core.Kind.SPOOLER:
            become_spooler_process(stop)
        _roles.pthread_sigmask(signal.SIG_SETMASK, sigmask)  # a pending SIGTERM lands here now
        _set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != self.pid:
            return 0  # the master died between fork and prctl
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)

        table = self.table
        assert table is not None
        if spec.kind == _core.Kind.ERLANG:
            table.put(slot, F_PID, os.getpid())
            assert self.s.erlang is not None
            from _uwsgidecorators_runtime.erlang import run_node

            return run_node(self.s.erlang, self.s.erlang_cookie, lambda: stop.requested)
        assert queue is not None  # every kind but the Erlang node has a shared queue
        harakiri = {_core.Kind.SPOOLER: self.s.harakiri, _core.Kind.MULE: self.s.mule_harakiri}.get(
            spec.kind, self.s.worker_harakiri
        )
        if spec.kind == _core.Kind.MULE:
            prepare_mule(
                spec.ident,
                farms=my_farms,
                where=spec.label(),
                harakiri=harakiri,
                stop=stop,
                chan=chan,
                queue=queue,
                farm_socks=farm_socks,
                control=self.control or '',
            )
        enter_role(
            spec.kind,
            ident=spec.ident,
            slot=slot,
            table=table,
            region=self.region,
            master_pid=self.pid,
            spooler_dir=self.s.spoolers[spec.dir_index] if spec.kind == _core.Kind.SPOOLER else None,
            channels=(chan, queue),
            where=spec.label(),
            harakiri=harakiri,
            stop=stop,
            monitors=monitors,
        )
        if spec.kind == _core.Kind.MULE:
            return run_mule(spec.ident, spec.script, stop)

        if spec.kind == _core.Kind.SPOOLER:
            for target in self.s.spooler_imports:
                try:
                    import_target(target)
                except Exception:
                    log.error(
                        '%s: --spooler-import %s failed:\n%s', spec.label(), target, format_exc()
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
                trusted_uids=s.trusted_uids,
                stop=stop,
                signal_socks=(chan, queue),
            )
        rpc_server = (
            _core.RpcServer([s.fileno() for s in self.rpc_socks], self.s.rpc_max_connections, self.s.socket_timeout)
            if self.rpc_socks
            else None
        )
        return run_worker(
            spec.ident,
            spec.label(),
            self.s.worker_harakiri,
            stop,
            chan,
            queue,
            monitors,
            rpc_server,
            control=self.control or '',
        )


def _core_direct_socket_path(control: str, worker_id: int) -> str:
    from _uwsgidecorators_runtime import _core

    return os.fsdecode(_core.direct_socket_path(control, worker_id))


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
