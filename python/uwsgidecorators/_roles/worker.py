"""The worker process: runs signal handlers (``@timer``, ``@cron``, ``@filemon``, ``@signal``
aimed at workers) and serves RPC calls on the master's RPC sockets, until SIGTERM."""

from __future__ import annotations

import os
import socket

from _uwsgidecorators_runtime.log import get_logger
from _uwsgidecorators_runtime import _core
from _uwsgidecorators_runtime import rpc as _rpc
from _uwsgidecorators_runtime import signals as _signals

from .spooler import StopFlag, give_back_wakeup_fd, take_wakeup_fd

# The worker's lines keep the logger they had when the master module ran this loop.
log = get_logger('uwsgidecorators.master')


def run_worker(
    ident: int,
    where: str,
    harakiri: float,
    stop: StopFlag,
    chan: socket.socket,
    queue: socket.socket,
    monitors: _core.WorkerMonitors | None = None,
    rpc_server: _core.RpcServer | None = None,
    control: str = '',
) -> int:
    """Run signal handlers until SIGTERM: one byte from the private channel ``chan``, the direct
    socket of worker ``ident`` or the shared worker ``queue`` is one signal, and so is an event of
    the file ``monitors`` this worker reads itself (``MasterLoop.worker_monitors``: one hop). The
    wake-up fd closes the check-then-sleep race of SIGTERM. With ``rpc_server`` (over the master's
    RPC sockets, of which exactly one worker takes each connection) calls are served while
    signals are awaited. ``control``: the master's control socket, beside which the worker binds
    its direct socket ('' for none)."""
    wakeup = take_wakeup_fd()  # the child's own: the master's was cleared after the fork
    # Signals aimed at this worker alone come from any process straight to this socket (see
    # _core.DirectSender); until it is bound they go through the master, so none is lost.
    direct = -1
    if control:
        try:
            # (a socket file left by this slot's previous worker is replaced)
            direct = _core.bind_datagram(_core.direct_socket_path(control, ident))
        except OSError as exc:
            log.warning('%s: no direct signal socket (%s): signals come through the master', where, exc)
    _signals.set_direct_channel(direct)  # uwsgi.signal_wait reads it too
    dispatch = _rpc.worker_dispatch(harakiri)
    try:
        while not stop.requested:
            # The wait (GIL released) and the reads are the core's: one call per wake-up.
            wake_fd = wakeup[0] if wakeup is not None else -1
            timeout = None
            if rpc_server is not None:
                # Serves calls (accept, reads, writes without the GIL; each function with it)
                # until a signal channel, a file monitor or the wake-up fd is readable.
                fds = [fd for fd in (chan.fileno(), queue.fileno(), direct, wake_fd) if fd >= 0]
                if monitors is not None:
                    fds.extend(monitors.fds())
                rpc_server.serve(dispatch, _rpc.log.warning, fds)
                timeout = 0.0
            for num in _core.recv_signals(
                chan.fileno(), queue.fileno(), wake_fd, timeout, direct, monitors=monitors
            ):
                if stop.requested:
                    break
                _signals.run_handler(num, where=where, harakiri=harakiri)
    finally:
        if wakeup is not None:
            give_back_wakeup_fd(wakeup)
        _signals.set_direct_channel(-1)
        _signals.set_worker_monitors(None)
        if direct >= 0:
            os.close(direct)
    return 0
