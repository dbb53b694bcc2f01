"""Per-process runtime state: where this process enqueues, what it is, what the master told it.

Sources, in order of precedence:

1. what the master sets in memory right after forking a child (role, worker id, shared table);
2. an explicit :func:`configure` call (a gunicorn worker, a Django shell, a test);
3. environment variables, read lazily on first use. The master exports them before forking, so
   its children and anything they exec see the same spool directories:

   ``UWSGIDECORATORS_SPOOLERS``    spool dirs separated by ``os.pathsep``; the first is the default
   ``UWSGIDECORATORS_OPT``         JSON object, option name -> string | true | list of strings
   ``UWSGIDECORATORS_MASTER_PID``  pid of the master (``uwsgi.masterpid()``)
   ``UWSGIDECORATORS_DURABLE``     ``1`` to fsync every enqueued job (and its directory)
   ``UWSGIDECORATORS_CONTROL``     path of the master's control socket (``uwsgi.signal`` sends
                                   there); any process with it in its environment can raise signals
   ``UWSGIDECORATORS_REGION``      path of the master's shared region (process table, routes,
                                   locks); else ``<control socket>.region``
   ``UWSGIDECORATORS_TEST_CLOCK``  ``1``: the master lets control datagrams move the wall clock
                                   that cron sees (tests only)
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable, Iterable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from .shared import SharedTable

__all__ = [
    'ENV_CONTROL',
    'ENV_REGION',
    'ENV_DURABLE',
    'ENV_MASTER_PID',
    'ENV_OPT',
    'ENV_SPOOLERS',
    'ENV_TEST_CLOCK',
    'OptValue',
    'RuntimeState',
    'check_spool_dir',
    'check_spoolers',
    'configure',
    'reset',
    'state',
]

ENV_SPOOLERS = 'UWSGIDECORATORS_SPOOLERS'
ENV_OPT = 'UWSGIDECORATORS_OPT'
ENV_MASTER_PID = 'UWSGIDECORATORS_MASTER_PID'
ENV_DURABLE = 'UWSGIDECORATORS_DURABLE'
ENV_CONTROL = 'UWSGIDECORATORS_CONTROL'
ENV_REGION = 'UWSGIDECORATORS_REGION'
ENV_TEST_CLOCK = 'UWSGIDECORATORS_TEST_CLOCK'

#: one option value: a string, ``True`` for a flag, or a list when the option was repeated
OptValue = str | bool | list[str]
PathArg = str | bytes | os.PathLike[str] | os.PathLike[bytes]

Role = str  # 'master' | 'spooler' | 'worker'


class RuntimeState:
    __slots__ = (
        'spoolers', 'opt', 'master_pid', 'role', 'worker_id', 'durable', 'table', 'slot', 'spooler_dir',
        'spoolers_checked', 'spoolers_origin', 'control', 'region', '_uwsgi_opt',
    )

    spoolers: list[bytes]
    """realpaths of the configured spool dirs, ``--spooler`` and ``--spooler-external`` in order"""
    opt: dict[str, OptValue]
    master_pid: int
    role: Role | None
    worker_id: int
    durable: bool
    table: SharedTable | None
    """the master's shared table, only in processes the master forked (and in the master)"""
    slot: int | None
    """this child's slot in ``table``"""
    spooler_dir: bytes | None
    """in a spooler process: the directory it consumes"""
    spoolers_checked: bool
    """``spoolers`` were found usable (checked once, at the first enqueue)"""
    spoolers_origin: str
    """where ``spoolers`` came from, for error messages"""
    control: str | None
    """the master's control socket, set by ``configure(control=...)`` (else the environment's
    ``UWSGIDECORATORS_CONTROL``, else the default place next to the first spool dir)"""
    region: Any
    """the master's shared region (``_core.Region``), in the master and the processes it forked;
    other processes map it on first use (``_uwsgidecorators_runtime.region``)"""
    _uwsgi_opt: dict[str, bytes | bool] | None

    def __init__(
        self,
        spoolers: list[bytes] | None = None,
        opt: dict[str, OptValue] | None = None,
        master_pid: int = 0,
        role: Role | None = None,
        worker_id: int = 0,
        durable: bool = False,
        table: SharedTable | None = None,
        slot: int | None = None,
        spooler_dir: bytes | None = None,
        spoolers_checked: bool = False,
        spoolers_origin: str = ENV_SPOOLERS,
        control: str | None = None,
        region: Any = None,
        _uwsgi_opt: dict[str, bytes | bool] | None = None,
    ) -> None:
        self.spoolers = [] if spoolers is None else spoolers
        self.opt = {} if opt is None else opt
        self.master_pid = master_pid
        self.role = role
        self.worker_id = worker_id
        self.durable = durable
        self.table = table
        self.slot = slot
        self.spooler_dir = spooler_dir
        self.spoolers_checked = spoolers_checked
        self.spoolers_origin = spoolers_origin
        self.control = control
        self.region = region
        self._uwsgi_opt = _uwsgi_opt

    def uwsgi_opt(self) -> dict[str, bytes | bool]:
        """``uwsgi.opt`` as real uWSGI shows it on Python 3: str -> bytes or True, last value wins.

        The same dict object is returned every time so that code mutating ``uwsgi.opt`` (the
        golden producer aliases ``spooler-external`` to ``spooler``) sees its own changes.
        """
        if self._uwsgi_opt is None:
            self._uwsgi_opt = {k: _opt_to_uwsgi(v) for k, v in self.opt.items()}
        return self._uwsgi_opt


def _opt_to_uwsgi(value: OptValue) -> bytes | bool:
    if isinstance(value, list):
        value = value[-1] if value else ''
    if value is True:
        return True
    if value is False:
        return b'false'
    return os.fsencode(str(value))


_lock = threading.RLock()
_state: RuntimeState | None = None


def _realpath_bytes(path: PathArg) -> bytes:
    raw = os.fsencode(os.fspath(path))
    if not raw:
        raise ValueError('a spooler directory cannot be the empty string')
    return os.path.realpath(raw)


def check_spool_dir(directory: bytes, origin: str) -> None:
    """Refuse a spool directory this process cannot enqueue into, naming the path and the fix.

    An attached process never creates one: a typo would queue tasks where no spooler looks
    (the master's ``--spooler`` creates its directories). A directory every user can write is
    refused, as the spooler refuses it: others could replace or add tasks."""
    from .exceptions import SpoolDirectoryError

    shown = os.fsdecode(directory)
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        raise SpoolDirectoryError(
            errno.ENOENT,
            f'spool directory {shown} ({origin}) does not exist, and a process that only enqueues '
            'does not create one (a typo would queue tasks that no spooler runs): check the path, '
            f'or start the master with --spooler {shown} (it creates it)',
            shown,
        ) from None
    except OSError as exc:
        raise SpoolDirectoryError(
            exc.errno, f'spool directory {shown} ({origin}) cannot be used: {exc.strerror}', shown
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise SpoolDirectoryError(
            errno.ENOTDIR, f'spool directory {shown} ({origin}) is not a directory', shown
        )
    if stat.S_IMODE(st.st_mode) & stat.S_IWOTH:
        # Another user could replace or add tasks; and no spooler of ours would consume it.
        raise SpoolDirectoryError(
            errno.EPERM,
            f'spool directory {shown} ({origin}) is writable by every user (mode '
            f'{stat.S_IMODE(st.st_mode):04o}): any local user could replace or add tasks, and the '
            f'spooler refuses it. Use a directory of its own and run: chmod o-w {shown}',
            shown,
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SpoolDirectoryError(
            errno.EACCES,
            f'spool directory {shown} ({origin}) is not writable by this process (uid {os.geteuid()}, '
            f'directory owned by uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}): run this '
            'process as the spooler\'s user, or share a group with write access (chmod g+w and '
            'trust the writer with --spooler-trusted-user)',
            shown,
        )


def check_spoolers(st: RuntimeState) -> None:
    """Check every spool dir of ``st`` once per process (at its first enqueue)."""
    origin = st.spoolers_origin
    for d in st.spoolers:
        check_spool_dir(d, origin)
    st.spoolers_checked = True


def _parse_opt_env(text: str) -> dict[str, OptValue]:
    import json  # only when a master passed options: a plain `import uwsgi` does without it

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f'{ENV_OPT} is not valid JSON: {exc}') from None
    if not isinstance(data, dict):
        raise ValueError(f'{ENV_OPT} must be a JSON object, got {type(data).__name__}')
    out: dict[str, OptValue] = {}
    for key, value in data.items():
        if isinstance(value, bool) or isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[str(key)] = list(value)
        elif isinstance(value, (int, float)):
            out[str(key)] = str(value)
        else:
            raise ValueError(f'{ENV_OPT}: option {key!r} must be a string, true or a list of strings')
    return out


def _from_env() -> RuntimeState:
    st = RuntimeState()
    raw_dirs = os.environ.get(ENV_SPOOLERS, '')
    st.spoolers = [_realpath_bytes(d) for d in raw_dirs.split(os.pathsep) if d]
    raw_opt = os.environ.get(ENV_OPT)
    if raw_opt:
        st.opt = _parse_opt_env(raw_opt)
    raw_pid = os.environ.get(ENV_MASTER_PID, '').strip()
    if raw_pid:
        try:
            st.master_pid = int(raw_pid)
        except ValueError:
            raise ValueError(f'{ENV_MASTER_PID} must be an integer pid, got {raw_pid!r}') from None
    st.durable = os.environ.get(ENV_DURABLE, '') == '1'
    return st


def state() -> RuntimeState:
    """This process's runtime state, read from the environment on first use."""
    global _state
    st = _state
    if st is None:
        with _lock:
            if _state is None:
                _state = _from_env()
            st = _state
    return st


#: called (without arguments) whenever the state is reset or reconfigured: caches of what it
#: resolved (the lock region) forget it
on_change: list[Callable[[], None]] = []


def _changed() -> None:
    for hook in on_change:
        hook()


def reset() -> None:
    """Forget everything; the next :func:`state` call reads the environment again."""
    global _state
    with _lock:
        _state = None
    _changed()


def _as_list(spooler: PathArg | Iterable[PathArg]) -> list[PathArg]:
    if isinstance(spooler, (str, bytes, os.PathLike)):
        return [spooler]
    return list(spooler)


def configure(
    spooler: PathArg | Iterable[PathArg] | None = None,
    durable: bool | None = None,
    control: PathArg | None = None,
) -> None:
    """Tell this process where to enqueue, without a master or environment variables.

    ``spooler``: one directory or a list of them (the first is the default, the others are
    reached with the ``spooler`` key, as with ``--spooler`` given several times). Each must exist
    and be writable (``SpoolDirectoryError`` names the path and the fix otherwise): a process that
    only enqueues never creates one. ``durable=True`` makes every enqueue fsync
    the file and its directory before returning. ``control``: the master's control socket
    (``--control-socket``), where ``uwsgi.signal`` sends; by default the environment's
    ``UWSGIDECORATORS_CONTROL``, else ``<first spool dir>/.uwsgidecorators/control``.

    Only what is passed changes; the rest (e.g. what came from the environment) is kept.
    """
    with _lock:
        st = state()
        if spooler is not None:
            dirs = [_realpath_bytes(p) for p in _as_list(spooler)]
            if not dirs:
                raise ValueError('configure(spooler=...) needs at least one directory')
            for d in dirs:
                check_spool_dir(d, 'configure(spooler=...)')
            st.spoolers = dirs
            st.spoolers_origin = 'configure(spooler=...)'
            st.spoolers_checked = True
            # uwsgidecorators (and user code) test `'spooler' in uwsgi.opt`: keep it truthful.
            st.opt['spooler'] = [os.fsdecode(d) for d in dirs] if len(dirs) > 1 else os.fsdecode(dirs[0])
            st._uwsgi_opt = None
        if durable is not None:
            st.durable = bool(durable)
        if control is not None:
            path = os.fsdecode(os.fspath(control))
            if not path:
                raise ValueError('configure(control=...) needs the path of the master\'s control socket')
            st.control = os.path.abspath(path)
        if control is not None or spooler is not None:
            from . import mules as _mules

            _mules.reset()  # found again next to the (new) control socket
    _changed()
