"""The mule process: ``--mules N`` / ``--mule`` / ``--mule=script.py`` / ``--mule=module:function``.

Set up before ``post_fork_hook`` runs (:func:`prepare_mule`), since ``@mule``, ``@muleloop``,
``@mulemsg`` and ``@farm`` loop inside that hook and call ``uwsgi.mule_get_msg`` there. Then
(:func:`run_mule`) a script or ``module:function`` runs as the mule's main program, as in uWSGI
(when it returns the mule exits and the master starts it again); a plain mule runs the built-in
loop: each message goes to ``uwsgi.mule_msg_hook`` (``uwsgidecorators`` installs its
``mule_msg_dispatcher`` there, which runs ``@mulefunc`` calls) and is acknowledged once it ran;
signal handlers run between messages.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from types import FrameType

from _uwsgidecorators_runtime.log import get_logger
from _uwsgidecorators_runtime import _core
from _uwsgidecorators_runtime import mules as _mules

from .spooler import StopFlag, take_wakeup_fd

log = get_logger('uwsgidecorators.master')


class MuleStop(StopFlag):
    """SIGTERM/SIGINT in a mule: finish the message it runs (then leave at the next wait); an
    idle mule, or one in a ``@muleloop`` that never takes messages, leaves at once."""

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if not _mules.holding():
            raise SystemExit(0)


def prepare_mule(
    ident: int,
    *,
    farms: list[str],
    where: str,
    harakiri: float,
    stop: StopFlag,
    chan: socket.socket,
    queue: socket.socket,
    farm_socks: list[socket.socket],
    control: str,
) -> None:
    """Bind this mule's wake socket beside the master's ``control`` socket and publish what
    ``uwsgi.mule_get_msg`` & co need."""
    # (a socket file left by this mule's previous process is replaced)
    wake = _core.bind_datagram(_core.mule_wake_path(control, ident))
    pipe = take_wakeup_fd()
    main = threading.main_thread()

    def wake_fd() -> int:
        # Only the main thread runs Python's signal handlers: another thread's wait must not
        # drain the pipe they wake.
        return pipe[0] if pipe is not None and threading.current_thread() is main else -1

    _mules.set_mule(
        _mules.MuleState(
            mule_id=ident,
            farms=farms,
            private=chan.fileno(),
            shared=queue.fileno(),
            farm_signals=[s.fileno() for s in farm_socks],
            wake_sock=wake,
            where=where,
            harakiri=harakiri,
            stopping=lambda: stop.requested,
            wake_fd=wake_fd,
        )
    )
    _keep.extend([chan, queue, *farm_socks])


_keep: list[socket.socket] = []


def _run_script(script: str) -> None:
    if script.endswith('.py'):
        import runpy

        runpy.run_path(script, run_name='__main__')
        return
    module, _, function = script.partition(':')
    __import__(module)
    mod = sys.modules[module]
    if function:
        getattr(mod, function)()


def run_mule(ident: int, script: str | None, stop: StopFlag) -> int:
    """The mule's main program: ``script`` if given, else the built-in message loop."""
    if script:
        log.info('mule %d (pid: %d) running %s', ident, os.getpid(), script)
        _run_script(script)
        return 1  # as in uWSGI: a mule whose program returned ends and is started again
    import uwsgi

    # A message is acknowledged by the next wait, or at the end once stop is requested.
    _mules.serve(uwsgi, stop)
    return 0
