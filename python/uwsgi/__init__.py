"""A stand-in for uWSGI's builtin ``uwsgi`` module, for processes that do not run inside uWSGI.

Inside a real uWSGI process the builtin module is registered before anything is imported, so
``import uwsgi`` never reaches this file there. Everywhere else (our master and its children, a
gunicorn worker, a test) this module answers with real uWSGI's names, signatures, types and error
messages (Python 3 flavour: most strings are ``bytes``).

Here today: the spooler side, and signals with their sources (``register_signal``, ``signal``,
``signal_registered``, ``signal_wait``, ``signal_received``, ``add_timer``, ``add_rb_timer``,
``add_cron``, ``add_file_monitor``), the Erlang node (``erlang_register_process``,
``erlang_send_message``), RPC (``register_rpc``, ``rpc``, ``call``, ``rpc_list``), mules and
farms (``mule_id``, ``mule_msg``, ``mule_get_msg``, ``farm_msg``, ``farm_get_msg``, ``in_farm``),
and locks (``lock``, ``unlock``, ``is_locked``: the master's shared locks, or process-private
ones when this process knows no master). Names of uWSGI's API that no subsystem here answers
fail loudly with ``AttributeError`` instead of pretending to work.

Importing this module has no side effects: it imports only the private runtime
(``_uwsgidecorators_runtime``: the Rust extension and the configuration now, the rest on first
use), never the ``uwsgidecorators`` package, whose import installs ``uwsgi.spooler`` and
``uwsgi.post_fork_hook`` (as in uWSGI, that happens when the program imports the decorators, not
before).
"""

from __future__ import annotations

import os
import socket as _socket
import sys

from _uwsgidecorators_runtime.log import INFO as _INFO
from _uwsgidecorators_runtime.log import get_logger as _get_logger

# Type checkers see `typing`; at run time `overload` comes from a stand-in (importing typing
# costs every process ~1 MiB).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal, overload

    from _uwsgidecorators_runtime.config import RuntimeState
else:
    from _uwsgidecorators_runtime._lite_typing import overload

# Checked by uwsgidecorators to tell this shim from the real builtin module. Must stay first.
__uwsgidecorators_shim__ = True

SPOOL_OK: Literal[-2] = -2
SPOOL_RETRY: Literal[-1] = -1
SPOOL_IGNORE: Literal[0] = 0

#: the uWSGI version we reproduce, tagged so that a log or a bug report shows it is not uWSGI
version: bytes = b'2.0.21-uwsgidecorators-rs'
version_info: tuple[int, int, int, int, bytes] = (2, 0, 21, 0, b'uwsgidecorators-rs')
hostname: bytes = _socket.gethostname().encode('utf-8', 'surrogateescape')

# Computed on access (module __getattr__ below); declared for type checkers.
opt: dict[str, bytes | Literal[True]]
spoolers: tuple[bytes, ...]
numproc: int

# Settable hooks, absent until set (as in uWSGI, where the plugin looks them up at call time):
#   spooler(dict) -> int      called by the spooler for every task
#   post_fork_hook()          called in every child the master forks
#   mule_msg_hook(bytes)      called by the mule loop for every message
spooler: Callable[[dict[Any, bytes]], Any]
post_fork_hook: Callable[[], Any]
mule_msg_hook: Callable[[bytes], Any]

_log = _get_logger('uwsgidecorators.spool')

# Imported with the shim, not on first use: almost every call here needs the configuration, and
# imported lazily it and the exceptions of the spool dir checks cost the process's first
# uwsgi.spool() 8-15 ms (it then carried dataclasses, inspect and json, gone since), which the
# first task's enqueue-to-start latency showed (tests/test_first_spool.py).
from _uwsgidecorators_runtime import config as _CONFIG  # noqa: E402
from _uwsgidecorators_runtime import exceptions as _exceptions  # noqa: E402,F401


def _state() -> RuntimeState:
    return _CONFIG.state()


def __getattr__(name: str) -> Any:
    # Module attributes that depend on the runtime configuration are computed on access, so a
    # later uwsgidecorators.configure() (or the master setting up a child) is reflected.
    if name == 'opt':
        return _state().uwsgi_opt()
    if name == 'spoolers':
        return tuple(_state().spoolers)
    if name == 'numproc':
        return _numproc()
    raise AttributeError(f"module 'uwsgi' has no attribute {name!r} (uwsgidecorators shim)")


def erlang_register_process(name: str, func: Callable[[Any], Any]) -> None:
    """Messages sent to ``name`` on the master's Erlang node (``--erlang NAME``) call ``func``
    with the message; a value it returns other than None goes back to the sender."""
    from _uwsgidecorators_runtime import erlang as _erlang

    _erlang.register_process(name, func)


def erlang_send_message(node: str, process: Any, message: Any) -> None:
    """Send ``message`` to the process registered as ``process`` (a str) on Erlang node
    ``node``, or to an ``ErlangPid``; works in the Erlang node process (an @erlang function)."""
    from _uwsgidecorators_runtime import erlang as _erlang

    _erlang.send_message(node, process, message)




def _numproc() -> int:
    opt = _state().opt
    for key in ('processes', 'workers'):
        value = opt.get(key)
        if isinstance(value, list):
            value = value[-1] if value else None
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return 1  # uWSGI always runs at least one worker


# ---------------------------------------------------------------------------------------------
# process identity


def masterpid() -> int:
    """pid of the master, 0 when this process has none."""
    return _state().master_pid


def worker_id() -> int:
    """1..N in a worker, 0 elsewhere (master, spoolers, attached processes)."""
    return _state().worker_id


def mule_id() -> int:
    """1..N in a mule, 0 elsewhere."""
    return _mules().mule_id()  # type: ignore[no-any-return]


_MULES_MOD: Any = None


def _mules() -> Any:
    global _MULES_MOD
    if _MULES_MOD is None:
        from _uwsgidecorators_runtime import mules

        _MULES_MOD = mules
    return _MULES_MOD


# ---------------------------------------------------------------------------------------------
# mules and farms


def mule_msg(message: bytes | str, mule: int | str | bytes | None = None, /) -> bool:
    """Queue ``message`` for mule ``mule`` (None or 0: exactly one mule takes it; N: mule N), or
    for one mule of the farm named ``mule`` (str or bytes). Works in any process that finds the
    master (its children, or one given ``UWSGIDECORATORS_CONTROL`` / ``configure(control=...)`` /
    the first spool dir). Returns True. Nothing is dropped: a full queue makes the caller wait up
    to 5 s (``--mule-send-timeout``), then raises ``MuleQueueFullError``; a message over
    ``--mule-msg-size`` raises ``ValueError``; without mules, ``ValueError("no mule configured...")``.
    """
    return _core_module().mule_msg(message, mule)  # type: ignore[no-any-return]


def farm_msg(farm: str | bytes, message: bytes | str, /) -> bool:
    """Queue ``message`` for exactly one mule of ``farm``."""
    return (_MULES_MOD or _mules()).farm_msg(farm, message)  # type: ignore[no-any-return]


def mule_get_msg(
    signals: bool = True, farms: bool = True, buffer_size: int = 65536, timeout: int = -1
) -> bytes | None:
    """In a mule: the next message of its own queue, the any-mule queue and (``farms``) its
    farms'; None when it ran a signal handler instead (``signals``) or after ``timeout`` seconds
    (-1: no limit). The previous message this thread got is acknowledged by this call."""
    return (_MULES_MOD or _mules()).mule_get_msg(signals, farms, buffer_size, timeout)  # type: ignore[no-any-return]


def farm_get_msg() -> bytes | None:
    """In a mule: the next message of one of its farms (None when it belongs to none)."""
    return (_MULES_MOD or _mules()).farm_get_msg()  # type: ignore[no-any-return]


def in_farm(farm_name: str | bytes | None = None, /) -> Literal[True] | None:
    """True in a mule of farm ``farm_name`` (None: of any farm), else None."""
    return _mules().in_farm(farm_name)  # type: ignore[no-any-return]


def i_am_the_spooler() -> Literal[True] | None:
    """True in a spooler process, None (not False, as in uWSGI) elsewhere."""
    return True if _state().role == 'spooler' else None


# ---------------------------------------------------------------------------------------------
# spool (write side)


def _not_configured() -> Exception:
    from _uwsgidecorators_runtime.exceptions import SpoolerNotConfiguredError

    return SpoolerNotConfiguredError(
        'no spooler is configured in this process: run it under the uwsgidecorators master '
        '(uwsgidecorators --spooler DIR ...), set UWSGIDECORATORS_SPOOLERS=DIR, or call '
        "uwsgidecorators.configure(spooler='DIR') before enqueueing"
    )


def _value_to_bytes(value: Any) -> bytes:
    """What CPython's PyObject_Bytes() makes of a spool value, or ValueError as uWSGI raises.

    bytes as they are; objects with ``__bytes__``; buffers (bytearray, memoryview...);
    iterables of ints 0..255 (``[104, 105]`` -> ``b'hi'``). ``str``, ``int``, ``float``,
    ``None`` are refused, exactly the cases uWSGI refuses.
    """
    if isinstance(value, bytes):
        return bytes(value)
    try:
        converter = getattr(type(value), '__bytes__', None)
        if converter is not None:
            result = converter(value)
            if isinstance(result, bytes):
                return result
        elif not isinstance(value, str):
            try:
                return memoryview(value).tobytes()
            except TypeError:
                pass
            return bytes(iter(value))  # iter() first: bytes(5) would be five NULs, uWSGI refuses ints
    except (TypeError, ValueError):
        pass
    raise ValueError('spooler callable dictionary must contains only bytes')


@overload
def spool(message_dict: dict[bytes, bytes], /) -> bytes: ...
@overload
def spool(
    *, spooler: bytes = ..., priority: bytes = ..., at: bytes = ..., body: bytes = ..., **kwargs: bytes
) -> bytes: ...
def spool(*args: Any, **kwargs: Any) -> bytes:
    """Write one job into a spool directory; returns the full path of the new file (bytes).

    ``spool(dict)`` or ``spool(**kwargs)``. On Python 3 every key must be bytes (so the kwargs
    form always fails, as in uWSGI). A ``b'body'`` item whose value is exactly ``bytes`` is
    REMOVED from the caller's dict and written raw after the vars, as uWSGI does. ``b'spooler'``
    picks the directory (realpath of a configured one; empty = the default), ``b'priority'`` a
    numeric subdirectory, ``b'at'`` the earliest run time (unix seconds).
    """
    st = _state()
    if not st.spoolers_checked:
        if not st.spoolers:
            raise _not_configured()
        from _uwsgidecorators_runtime.config import check_spoolers

        check_spoolers(st)  # once per process: missing, read-only, others-writable dirs
    if args:
        job = args[0]
        if type(job) is dict:
            # The common case (all bytes, nothing to refuse) is checked and written in the core;
            # anything else comes back as None and goes through the checks below.
            fast: bytes | None = (_CORE or _core_module()).spool_job(job, st.spoolers, st.durable)
            if fast is not None:
                if _log.isEnabledFor(_INFO):
                    _log.info('[spooler] written %d bytes to file %s', os.path.getsize(fast), os.fsdecode(fast))
                return fast
        if not isinstance(job, dict):
            raise ValueError('The argument of spooler callable must be a dictionary')
    elif kwargs:
        job = kwargs
    else:
        raise ValueError('The argument of spooler callable must be a dictionary')

    body = b''
    candidate = job.get(b'body')
    if type(candidate) is bytes:
        # uWSGI deletes it from the caller's own dict before anything else is checked.
        body = candidate
        del job[b'body']

    pairs: list[tuple[bytes, bytes]] = []
    for key, value in job.items():
        if not isinstance(key, bytes):
            raise ValueError('spooler callable dictionary must contains only bytes')
        pairs.append((bytes(key), _value_to_bytes(value)))

    # The checks (which spooler, priority, `at`, size) are the core's, the same as the fast
    # path's; it raises uWSGI's errors and logs uWSGI's lines.
    path: bytes = _core_module().spool_pairs(st.spoolers, pairs, body, st.durable)
    if _log.isEnabledFor(_INFO):
        _log.info('[spooler] written %d bytes to file %s', os.path.getsize(path), os.fsdecode(path))
    return path


send_to_spooler = spool


_CORE: Any = None


def _core_module() -> Any:
    global _CORE
    try:
        from _uwsgidecorators_runtime import _core
    except ImportError as exc:  # a source checkout without `maturin develop`
        raise ImportError(
            '_uwsgidecorators_runtime._core (the Rust extension) is not built: run `maturin develop` in the '
            f'uwsgidecorators-rs checkout or install the wheel ({exc})'
        ) from exc
    _CORE = _core
    return _core


# ---------------------------------------------------------------------------------------------
# locks


def lock(n: int = 0, /) -> None:
    """Take lock ``n`` (0 to ``--locks``), waiting as long as another thread or process holds it.

    The GIL is released while waiting and Ctrl-C interrupts the wait (``KeyboardInterrupt``). A
    holder that died holding it (kill -9) hands it over at once, with one line in the log.
    Taking a lock this thread already holds raises ``RuntimeError`` (uWSGI deadlocks); a number
    out of range raises ``ValueError``.
    """
    _core_module().lock(n)


def unlock(n: int = 0, /) -> None:
    """Release lock ``n``; ``RuntimeError`` if this thread does not hold it."""
    _core_module().unlock(n)


def is_locked(n: int = 0, /) -> bool:
    """Whether lock ``n`` is held (by any process or thread, this one included)."""
    return _core_module().is_locked(n)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# spooler queries


def spooler_jobs() -> list[bytes]:
    """Full paths of the jobs waiting at the top level of the first (default) spooler."""
    st = _state()
    if not st.spoolers:
        raise _not_configured()
    # The ids the queue reports; for a spool directory, the task files' full paths.
    return sorted(_core_module().spool_list(st.spoolers[0]))


def spooler_get_task(path: str, /) -> dict[Any, bytes] | None:
    """The dict ``uwsgi.spooler`` would receive for the job ``path`` names (a task id: for a spool
    directory, the file's path, as ``spool`` returned it); None if unreadable."""
    return _core_module().spool_read(os.fsdecode(path))  # type: ignore[no-any-return]


def spooler_pids() -> list[int]:
    """pids of the spooler processes of this instance (empty outside the master's family)."""
    from _uwsgidecorators_runtime.shared import KIND_SPOOLER

    table = _state().table
    return table.pids(KIND_SPOOLER) if table is not None else []


def spooler_pid() -> int:
    """pid of a spooler process of the first (default) spooler dir, 0 if none."""
    st = _state()
    if st.table is None or not st.spoolers:
        return 0
    return st.table.spooler_pids_by_dir(len(st.spoolers))[0]


def set_spooler_frequency(freq: int, /) -> Literal[True]:
    """Change how often spoolers rescan their directory (seconds), for every spooler process."""
    seconds = int(freq)
    if seconds <= 0:
        raise ValueError('spooler frequency must be a positive number of seconds')
    st = _state()
    if st.table is not None:
        st.table.spooler_frequency = seconds
    else:
        global _local_spooler_frequency
        _local_spooler_frequency = seconds
    return True


# Outside the master's family there is no shared table; a spooler loop running in this very
# process (tests) still honours the value.
_local_spooler_frequency = 0


# ---------------------------------------------------------------------------------------------
# harakiri

_harakiri_warned = False
_harakiri_function: str | None = None


def _name_user_harakiri(func: object) -> None:
    """(ours, for ``@harakiri``) the function the next ``set_user_harakiri`` guards."""
    from _uwsgidecorators_runtime.shared import qualified_name

    global _harakiri_function
    _harakiri_function = qualified_name(func)


def set_user_harakiri(seconds: int, /) -> None:
    """Ask the master to SIGKILL this process if it is still busy ``seconds`` seconds from now.

    0 clears the deadline. Works in processes forked by the uwsgidecorators master; elsewhere
    nothing could enforce it, so it does nothing and warns once (uWSGI logs "unable to set user
    harakiri without the master process" in that situation).
    """
    from _uwsgidecorators_runtime.shared import F_USER_DEADLINE

    global _harakiri_function
    seconds = int(seconds)
    st = _state()
    if st.table is not None and st.slot is not None:
        if seconds > 0:
            # the function the deadline guards, for the master's harakiri line: the one
            # @harakiri named, else the caller's
            name, _harakiri_function = _harakiri_function, None
            if name is None:
                code = sys._getframe(1).f_code
                module = sys._getframe(1).f_globals.get('__name__', '?')
                name = f'{module}.{getattr(code, "co_qualname", code.co_name)}'
            st.table.set_name(st.slot, F_USER_DEADLINE, name)
        st.table.arm(st.slot, F_USER_DEADLINE, seconds)
        return
    global _harakiri_warned
    if not _harakiri_warned and seconds:
        _harakiri_warned = True
        import warnings

        warnings.warn(
            'uwsgi.set_user_harakiri(): unable to set user harakiri without the master process '
            '(only the spoolers and workers forked by the uwsgidecorators master have a harakiri '
            'slot the master enforces); ignored',
            RuntimeWarning,
            stacklevel=2,
        )


# ---------------------------------------------------------------------------------------------
# signals (SPEC 4-7); the per-process table and the way to the master are in _signals


_signals_module: Any = None


def _signals() -> Any:
    # Imported on first use (importing this shim must not import the package), then kept.
    global _signals_module
    if _signals_module is None:
        from _uwsgidecorators_runtime import signals as _signals

        _signals_module = _signals
    return _signals_module


def register_signal(signum: int, who: str, handler: Callable[[int], Any], /) -> None:
    """Run ``handler(signum)`` where ``who`` (the target) says when signal ``signum`` (0..255) is raised.

    Targets as in uWSGI: ``''``/``'worker'`` (one idle worker), ``'workers'``, ``'workerN'``,
    ``'active-workers'``, ``'spooler'``, ``'spoolers'``, ``'mule'``, ``'mules'``, ``'muleN'``,
    ``'farm_NAME'``, ``'farmN'``, ``'subscribed'``. An unknown target raises ``ValueError`` here,
    and so does registering a number twice in the master.
    """
    _signals().register_signal(signum, who, handler)


def signal_registered(signum: int, /) -> Literal[True] | None:
    """True if this process has a handler for ``signum``, None (not False) otherwise."""
    return _signals().signal_registered(signum)  # type: ignore[no-any-return]


def reload() -> bool:
    """Reload the master gracefully, as SIGHUP does: running tasks and handlers finish (up to
    ``--reload-mercy``), then the master re-executes itself and imports the task modules afresh
    (after checking that they import: if not, it logs why and keeps the running processes).
    Works in the master, its children and any process that reaches its control socket; raises
    ``MasterNotFoundError`` elsewhere. Returns True once the request is sent."""
    return bool(_signals().request_reload())


@overload
def signal(signum: int, /) -> None: ...
@overload
def signal(signum: int, remote: str, /) -> None: ...
def signal(signum: int, remote: str | None = None, /) -> None:
    """Raise signal ``signum``: the master routes it to the registered target.

    Works in the master, in its children and in any process that has ``UWSGIDECORATORS_CONTROL``
    in its environment. ``remote="host:port"`` sends it to another uWSGI node instead (its
    ``signal`` plugin answers; OSError if unreachable, ValueError if refused).
    """
    _signals().send_signal(signum, remote)


@overload
def signal_wait() -> Literal[b'']: ...
@overload
def signal_wait(signum: int, /) -> Literal[b'']: ...
def signal_wait(signum: int | None = None, /) -> Literal[b'']:
    """Wait until signal ``signum`` (any signal without it) reaches this process, running the
    handler of every signal that arrives meanwhile; returns ``b''``. Then
    :func:`signal_received` tells which one ended the wait.

    In the workers and spoolers of a uwsgidecorators master (a ``@postfork`` function, a thread
    it starts, a signal handler); elsewhere no signal can arrive and it raises
    ``MasterNotFoundError`` (in an attached process) or ``RuntimeError`` (in the master). The
    wait releases the GIL; Ctrl-C ends it, and so does a stop request (``SystemError``, as uWSGI).
    """
    if signum is None:
        return _signals().signal_wait()  # type: ignore[no-any-return]
    return _signals().signal_wait(signum)  # type: ignore[no-any-return]


def signal_received() -> int:
    """The signal that ended this thread's last :func:`signal_wait` (0 before any, -1 during one)."""
    return _signals().signal_received()  # type: ignore[no-any-return]


def add_timer(signum: int, seconds: float, /) -> None:
    """Raise ``signum`` every ``seconds`` (fractions allowed; 0 or less raises ValueError), from the master."""
    _signals().add_timer(signum, seconds)


def add_rb_timer(signum: int, seconds: float, iterations: int = 0, /) -> None:
    """Like :func:`add_timer`, stopping after ``iterations`` raises (0: never stops)."""
    _signals().add_timer(signum, seconds, iterations, rb=True)


@overload
def add_cron(
    signum: int, minute: int, hour: int, day: int, month: int, weekday: int, /, *, tz: str | None = ..., catch_up: bool = ...
) -> Literal[True]: ...
@overload
def add_cron(signum: int, crontab: str, /, *, tz: str | None = ..., catch_up: bool = ...) -> Literal[True]: ...
def add_cron(
    signum: int,
    minute: int | str,
    hour: int | None = None,
    day: int | None = None,
    month: int | None = None,
    weekday: int | None = None,
    /,
    *,
    tz: str | None = None,
    catch_up: bool = False,
) -> Literal[True]:
    """Raise ``signum`` at the start of every matching minute. Returns True.

    uWSGI's five integers (``-1`` any, ``-N`` divisible by N, weekday 0/7 = Sunday) or, ours, one
    crontab string (``"*/5 * * * *"``, ``"@daily"``). ``tz``: an IANA zone name (default: the
    master's local time). ``catch_up=True``: a minute missed while the master could not run (machine
    asleep, master stalled) fires once, late; by default it is skipped, as in uWSGI.
    """
    return _signals().add_cron(  # type: ignore[no-any-return]
        signum, minute, hour, day, month, weekday, tz=tz, catch_up=catch_up
    )


def add_file_monitor(
    signum: int, filename: str | bytes | os.PathLike[str], /, *, recursive: bool = False
) -> None:
    """Raise ``signum`` when the file or directory ``filename`` changes.

    A missing path raises ``FileMonitorPathError`` (a FileNotFoundError and a ValueError). The
    watch follows a file replaced by rename; ``recursive=True`` watches a whole directory tree.
    """
    _signals().add_file_monitor(signum, filename, recursive=recursive)


# ---------------------------------------------------------------------------------------------
# RPC (SPEC 10); the table, local, remote and via-the-master calls are in _rpc


_rpc_module: Any = None
_RPC_FUNCS: dict[bytes, Callable[..., Any]] = {}


def _rpc() -> Any:
    # Imported on first use, then kept; its table is bound here for the local fast path.
    global _rpc_module, _RPC_FUNCS
    if _rpc_module is None:
        from _uwsgidecorators_runtime import rpc

        _rpc_module = rpc
        _RPC_FUNCS = rpc.FUNCS
    return _rpc_module


@overload
def register_rpc(name: str, func: Callable[[], bytes | None], /) -> Literal[True]: ...
@overload
def register_rpc(name: str, func: Callable[[bytes], bytes | None], /, arg_count: Literal[1]) -> Literal[True]: ...
@overload
def register_rpc(
    name: str, func: Callable[[bytes, bytes], bytes | None], /, arg_count: Literal[2]
) -> Literal[True]: ...
@overload
def register_rpc(name: str, func: Callable[..., bytes | None], /, arg_count: int) -> Literal[True]: ...
def register_rpc(name: str, func: Callable[..., bytes | None], /, arg_count: int = 0) -> Literal[True]:
    """Make ``func`` callable by RPC as ``name`` (str, up to 255 bytes; at most ``--rpc-max``,
    64, functions per process). Registered in the master (at import), it is served by every
    worker and called locally in every process the master forks; registered elsewhere, it is
    this process's own. ``func`` gets bytes arguments and returns bytes (anything else, or
    ``b''``, is "no result": the caller gets None). ``arg_count`` is ignored, as in uWSGI."""
    return _rpc().register(name, func, arg_count)  # type: ignore[no-any-return]


def rpc(node: str | bytes, rpc_name: bytes, /, *rpc_args: bytes) -> bytes | None:
    """Call ``rpc_name(*rpc_args)`` (bytes) on ``node``: ``'HOST:PORT'`` or a Unix socket path
    (a uWSGI or uwsgidecorators server), or None/``''`` for a local call (see :func:`call`).
    Returns the function's bytes, or None (no such function, no result, the function raised, or
    the node did not answer within ``--socket-timeout``, 4 s: logged)."""
    if node is None and rpc_name.__class__ is bytes:
        func = _RPC_FUNCS.get(rpc_name)
        if func is not None and len(rpc_args) <= 255:
            for arg in rpc_args:
                if arg.__class__ is not bytes:
                    break
            else:
                try:
                    result = func(*rpc_args)
                except Exception:
                    return _rpc_module.failed(rpc_name)
                if result.__class__ is bytes and result:
                    return result
                return _rpc_module.result_of(result)
    return _rpc().call(node, rpc_name, rpc_args)  # type: ignore[no-any-return]


def call(rpc_name: bytes, /, *args: bytes) -> bytes | None:
    """A local call: ``rpc_name(*args)`` in this process when it registered the function (the
    master's functions are everyone's), else ``b'name@HOST:PORT'`` calls that node, and a
    process the master did not fork (a gunicorn worker, a shell) asks the master's workers
    (``MasterNotFoundError`` when it knows no master); else None, as in uWSGI."""
    if rpc_name.__class__ is bytes:
        func = _RPC_FUNCS.get(rpc_name)
        if func is not None and len(args) <= 255:
            for arg in args:
                if arg.__class__ is not bytes:
                    break
            else:
                try:
                    result = func(*args)
                except Exception:
                    return _rpc_module.failed(rpc_name)  # type: ignore[no-any-return]
                if result.__class__ is bytes and result:
                    return result
                return _rpc_module.result_of(result)  # type: ignore[no-any-return]
    return _rpc().call(None, rpc_name, args)  # type: ignore[no-any-return]


def rpc_list() -> tuple[bytes, ...]:
    """The names registered in this process (bytes), in registration order."""
    return _rpc().names()  # type: ignore[no-any-return]


# Load the extension now, not on the first enqueue: in uWSGI that first call pays nothing, and
# here it would pay the extension's load inside the caller's request. A checkout without the
# built extension still imports; its first use raises _core_module's error.
try:
    _core_module()
except ImportError:
    pass
else:
    # The core's functions themselves (same signatures and behaviour as the definitions above):
    # a free lock or a mule message then costs one call into the core, no Python frame.
    globals().update(lock=_CORE.lock, unlock=_CORE.unlock, is_locked=_CORE.is_locked, mule_msg=_CORE.mule_msg)
