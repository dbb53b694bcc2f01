"""The Erlang node process (``--erlang NAME``): uWSGI's Erlang C-node, in a child of the master.

``@erlang(name)`` (``uwsgi.erlang_register_process``) records a function under a process name
in every process that imports the task module; the master forks one child that becomes the
node (``run_node``): it registers with EPMD, accepts the nodes that prove the cookie, and for
each message sent to a registered name (``{Name, 'node@host'} ! Msg``) calls the function with
the message converted to Python. As in uWSGI the function gets the whole message; beyond uWSGI
(which threw the return value away) a value other than None is sent back to the sender, so
``{echo, 'ours@localhost'} ! hello, receive R -> R end`` works. Inside that process
``uwsgi.erlang_send_message`` sends to any Erlang process (connecting to its node if needed).

Terms map as uWSGI's plugin mapped them under Python 2, with Python 3's names: a binary or a
string (a list of bytes) is ``bytes``, an atom ``str``, integers ``int``, floats ``float``,
tuples ``tuple``, lists ``list``; Python ``None`` is sent as ``[]``. Ours besides: maps and
dicts, ``True``/``False`` as the atoms, pids and references as ``ErlangPid``/``ErlangRef``.
"""

from __future__ import annotations

import os

from .log import format_exc, get_logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ['default_cookie', 'node', 'register_process', 'registered', 'run_node', 'send_message']

log = get_logger('uwsgidecorators.erlang')

_processes: dict[str, Callable[[Any], Any]] = {}
_node: Any = None
"""the ``_core.ErlangNode`` of this process, in the node process only"""

#: Erlang's own variable for EPMD's port
ENV_EPMD_PORT = 'ERL_EPMD_PORT'


def register_process(name: str, func: Callable[[Any], Any]) -> None:
    """``uwsgi.erlang_register_process``: messages to ``name`` on our node call ``func``."""
    if not isinstance(name, str):
        raise TypeError(f'erlang_register_process() argument 1 must be str, not {type(name).__name__}')
    if not name or len(name) > 255:
        raise ValueError(f'Invalid erlang process name {name!r}: an atom of 1 to 255 characters')
    if not callable(func):
        raise TypeError(f'erlang_register_process(): {func!r} is not callable')
    _processes[name] = func


def registered() -> dict[str, Callable[[Any], Any]]:
    return dict(_processes)


def node() -> Any:
    """This process's ``_core.ErlangNode`` (None outside the node process)."""
    return _node


def default_cookie() -> str:
    """As Erlang does: the first line of ``~/.erlang.cookie``."""
    path = os.path.join(os.path.expanduser('~'), '.erlang.cookie')
    try:
        with open(path) as f:
            cookie = f.readline().strip()
    except OSError as exc:
        raise ValueError(
            f'no --erlang-cookie given and {path} cannot be read ({exc.strerror or exc}): '
            'give the cluster cookie with --erlang-cookie'
        ) from None
    if not cookie:
        raise ValueError(f'no --erlang-cookie given and {path} is empty')
    return cookie


def epmd_port() -> int:
    raw = os.environ.get(ENV_EPMD_PORT, '')
    if not raw:
        return 4369
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f'{ENV_EPMD_PORT}={raw!r} is not a port number') from None
    if not 0 < port < 65536:
        raise ValueError(f'{ENV_EPMD_PORT}={raw!r} is not a port number')
    return port


def send_message(node_name: str, process: Any, message: Any) -> None:
    """``uwsgi.erlang_send_message(node, process, message)``: ``process`` is a registered name
    (str) on ``node_name``, or an ``ErlangPid`` (then ``node_name`` is not used: a pid names its
    node)."""
    from . import _core

    if _node is None:
        raise RuntimeError(
            'uwsgi.erlang_send_message works in the Erlang node process (the master started with '
            '--erlang NAME runs it; call it from an @erlang function)'
        )
    if isinstance(process, _core.ErlangPid):
        _node.send(process, message)
    elif isinstance(process, str):
        _node.reg_send(node_name, process, message)
    else:
        raise TypeError(f'erlang_send_message(): process must be a str or an ErlangPid, not {type(process).__name__}')


def run_node(name: str, cookie: str | None, stopping: Callable[[], bool]) -> int:
    """The node process's loop, until ``stopping()``. Returns the exit code."""
    global _node
    from . import _core

    try:
        the_cookie = cookie if cookie else default_cookie()
        _node = _core.ErlangNode(name, the_cookie, epmd_port=epmd_port())
    except (ValueError, OSError) as exc:
        log.error('[erlang] cannot start the node %s: %s', name, exc)
        return 1
    log.info('Erlang C-Node %s registered on port %d', _node.name, _node.port)
    if not _processes:
        log.warning('[erlang] no process registered (@erlang / uwsgi.erlang_register_process): every message is dropped')
    try:
        while not stopping():
            event = _node.recv(0.5)
            if event is not None:
                _dispatch(event)
    finally:
        _node.close()
        _node = None
    return 0


def _dispatch(event: tuple[str, str, Any, Any, Any]) -> None:
    kind, peer, to, sender, payload = event
    if kind == 'connected':
        log.info('[erlang] node %s connected', peer)
        return
    if kind == 'closed':
        log.info('[erlang] node %s disconnected: %s', peer, payload)
        return
    if kind == 'refused':
        log.warning('[erlang] refused a connection from %s: %s', peer or 'an unnamed node', payload)
        return
    if kind == 'bad_message':
        log.warning('[erlang] message from %s to %r dropped: %s', peer, to, payload)
        return
    func = _processes.get(to) if isinstance(to, str) else None
    if func is None:
        log.warning('[erlang] message from %s to unregistered process %r dropped', peer, to)
        return
    try:
        result = func(payload)
    except Exception:
        log.error('[erlang] %s(...) raised:\n%s', to, format_exc())
        return
    if result is None or sender is None:
        return
    try:
        _node.send(sender, result)
    except (TypeError, ValueError, OSError) as exc:
        log.error('[erlang] cannot send the reply of %s to %r: %s', to, sender, exc)
