"""uWSGI's RPC outside uWSGI.

This process's function table (``uwsgi.register_rpc``: the master's entries are inherited by
every process it forks, a worker's own stay its own, as in uWSGI), local calls (run in the calling
process, as uWSGI runs them), remote calls (the uwsgi protocol, modifier1 173, by the core's
client, GIL released), calls from a process the master did not fork (through the master's private
RPC socket ``<control socket>.rpc``, served by its workers), and the workers' side of the
master's RPC sockets (:func:`dispatch`).

Names and arguments are bytes, results are bytes or None, as in uWSGI under Python 3.
"""

from __future__ import annotations

from collections.abc import Callable

from .log import get_logger
from . import config as _config
from .exceptions import MasterNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

log = get_logger('uwsgidecorators.rpc')

#: uWSGI's default --rpc-max: functions per process table
RPC_MAX_DEFAULT = 64
#: uWSGI's default --socket-timeout: a remote call's deadline, in seconds
SOCKET_TIMEOUT_DEFAULT = 4.0
#: longest name (uWSGI keeps names in 256-byte slots, NUL included)
NAME_MAX = 255
#: most arguments of one call (uWSGI counts them in a u8)
ARGS_MAX = 255
#: the master's private RPC socket is the control socket's path plus this
MASTER_SOCKET_SUFFIX = '.rpc'

#: this process's functions: name (UTF-8 bytes) -> function
FUNCS: dict[bytes, Callable[..., Any]] = {}

_UNABLE = 'unable to call rpc function'


def _opt_number(name: str, default: float) -> float:
    value = _config.state().opt.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return default
    return default


def register(name: str, func: Callable[..., Any], argc: int = 0) -> Literal[True]:
    """``uwsgi.register_rpc``: add or replace ``name`` in this process's table."""
    if not isinstance(name, str):
        raise TypeError(f'register_rpc() argument 1 must be str, not {type(name).__name__}')
    if not isinstance(argc, int) or isinstance(argc, bool):
        raise TypeError(f"register_rpc() argument 3 must be int, not {type(argc).__name__}")
    raw = name.encode()
    if b'\0' in raw:
        raise ValueError('embedded null character')
    if not raw or len(raw) > NAME_MAX:
        raise ValueError(
            f'unable to register rpc function: the name is {len(raw)} bytes, uWSGI takes 1 to {NAME_MAX}'
        )
    if not callable(func):
        raise TypeError(f'unable to register rpc function {name!r}: {func!r} is not callable')
    limit = int(_opt_number('rpc-max', RPC_MAX_DEFAULT))
    if raw not in FUNCS and len(FUNCS) >= limit:
        raise ValueError(
            f'unable to register rpc function {name!r}: {len(FUNCS)} are registered, the limit is {limit} (--rpc-max)'
        )
    FUNCS[raw] = func
    return True


def names() -> tuple[bytes, ...]:
    """``uwsgi.rpc_list``: this process's names, in registration order."""
    return tuple(FUNCS)


def run(func: Callable[..., Any], args: tuple[bytes, ...], name: bytes) -> bytes | None:
    """Run one function as uWSGI does: its bytes, or None for anything else (an empty result,
    str, None); an exception is logged with its traceback and gives None."""
    try:
        result = func(*args)
    except Exception:
        failed(name)
        return None
    return result_of(result)


def failed(name: bytes) -> None:
    """Log the exception being handled, raised by function ``name``; the caller gets None."""
    log.exception('rpc function %r raised', name.decode('utf-8', 'replace'))


def result_of(result: object) -> bytes | None:
    """A function's result as uWSGI hands it on: non-empty bytes, else None."""
    if isinstance(result, bytes) and result:
        return result if type(result) is bytes else bytes(result)
    return None


def _check(name: object, args: tuple[object, ...]) -> None:
    if not isinstance(name, bytes):
        raise ValueError(f'{_UNABLE}: the function name must be bytes, not {type(name).__name__}')
    for i, arg in enumerate(args):
        if not isinstance(arg, bytes):
            raise ValueError(f'{_UNABLE}: argument {i + 1} must be bytes, not {type(arg).__name__}')
    if len(args) > ARGS_MAX:
        raise ValueError(f'{_UNABLE}: {len(args)} arguments, the limit is {ARGS_MAX}')


def call(node: object, name: bytes, args: tuple[bytes, ...]) -> bytes | None:
    """``uwsgi.rpc(node, name, *args)``; ``node`` None, empty (or not str/bytes, as uWSGI takes
    it) means a local call."""
    _check(name, args)
    if isinstance(node, str) and node:
        return remote(node, name, args)
    if isinstance(node, bytes) and node:
        return remote(node.decode('latin-1'), name, args)
    return local(name, args)


def local(name: bytes, args: tuple[bytes, ...]) -> bytes | None:
    """A local call (``uwsgi.call``, ``uwsgi.rpc(None, ...)``): this process's function when it
    has one; else ``name@HOST:PORT`` is a remote call, and a process the master did not fork
    asks the master's workers; else None, as in uWSGI."""
    func = FUNCS.get(name)
    if func is not None:
        return run(func, args, name)
    if b'@' in name:
        fname, _, node = name.partition(b'@')
        if fname and node:
            return remote(node.decode('latin-1'), fname, args)
    if _config.state().role is None:
        return via_master(name, args)
    return None


_timeout_cache: tuple[object, float] | None = None


def _timeout() -> float:
    """--socket-timeout, read once per runtime state (a new state after configure() reads again)."""
    global _timeout_cache
    st = _config.state()
    cached = _timeout_cache
    if cached is None or cached[0] is not st:
        cached = _timeout_cache = (st, _opt_number('socket-timeout', SOCKET_TIMEOUT_DEFAULT))
    return cached[1]


def remote(address: str, name: bytes, args: tuple[bytes, ...]) -> bytes | None:
    """Call ``name`` at ``address`` (``HOST:PORT`` or a Unix socket path). No answer (refused,
    timed out, a bad reply) is logged and gives None, as in uWSGI."""
    from . import _core

    try:
        return _core.rpc_call(address, name, list(args), _timeout())
    except OSError as exc:
        log.warning('rpc %r at %s: %s', name.decode('utf-8', 'replace'), address, exc)
        return None


def master_socket() -> str:
    """The master's private RPC socket, found as the control socket is found."""
    from . import signals

    try:
        control = signals._control_path()
    except MasterNotFoundError:
        raise MasterNotFoundError(
            f'{_UNABLE}: the function is not registered in this process and this process knows no '
            f'uwsgidecorators master whose workers could run it (the master sets {_config.ENV_CONTROL} '
            'for its children; elsewhere give the master\'s --control-socket path in '
            f'{_config.ENV_CONTROL} or configure(control=...), or configure its first spool dir)'
        ) from None
    return control + MASTER_SOCKET_SUFFIX


def via_master(name: bytes, args: tuple[bytes, ...]) -> bytes | None:
    """Run ``name`` in one of the master's workers (from a process the master did not fork)."""
    from . import _core

    path = master_socket()
    try:
        return _core.rpc_call(path, name, list(args), _timeout())
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise MasterNotFoundError(
            f'{_UNABLE}: no master serves {path} ({exc.strerror or exc}): is the master running?'
        ) from None
    except OSError as exc:
        log.warning('rpc %r through the master (%s): %s', name.decode('utf-8', 'replace'), path, exc)
        return None


def dispatch(name: bytes, args: tuple[bytes, ...]) -> bytes | None:
    """A worker's answer to one request from the RPC sockets: unknown names get no reply."""
    func = FUNCS.get(name)
    if func is None:
        return None
    return run(func, args, name)


def worker_dispatch(harakiri: float) -> Callable[[bytes, tuple[bytes, ...]], bytes | None]:
    """:func:`dispatch` for a worker of the master: with ``harakiri`` > 0 (``--harakiri``) the
    master's deadline for this process is armed while a function runs, as for a signal handler."""
    st = _config.state()
    table, slot = st.table, st.slot
    if table is None or slot is None or harakiri <= 0:
        return dispatch
    from .shared import F_TASK_DEADLINE

    def guarded(name: bytes, args: tuple[bytes, ...]) -> bytes | None:
        func = FUNCS.get(name)
        if func is None:
            return None
        table.arm(slot, F_TASK_DEADLINE, harakiri)
        try:
            return run(func, args, name)
        finally:
            table.put(slot, F_TASK_DEADLINE, 0)

    return guarded


def master_socket_path(control: str) -> str:
    """Where a master whose control socket is ``control`` binds its private RPC socket."""
    return control + MASTER_SOCKET_SUFFIX
