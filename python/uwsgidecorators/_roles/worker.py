"""The worker process: runs signal handlers (``@timer``, ``@cron``, ``@filemon``, ``@signal``
aimed at workers) until SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import socket

from _uwsgidecorators_runtime import _core
from _uwsgidecorators_runtime import config as _config
from _uwsgidecorators_runtime import signals as _signals

from .spooler import StopFlag, give_back_wakeup_fd, take_wakeup_fd

# The worker's lines keep the logger they had when the master module ran this loop.
log = logging.getLogger('uwsgidecorators.master')


def run_worker(
    ident: int, where: str, harakiri: float, stop: StopFlag, chan: socket.socket, queue: socket.socket
) -> int:
    """Run signal handlers until SIGTERM: one byte from the private channel ``chan``, the direct
    socket of worker ``ident`` or the shared worker ``queue`` is one signal. The wake-up fd closes
    the check-then-sleep race of SIGTERM."""
    wakeup = take_wakeup_fd()  # the child's own: the master's was cleared after the fork
    # Signals aimed at this worker alone come from any process straight to this socket (see
    # _core.DirectSender); until it is bound they go through the master, so none is lost.
    direct = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    direct.setblocking(False)
    control = os.environ.get(_config.ENV_CONTROL, '')
    if control:
        path = _core.direct_socket_path(control, ident)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # left by this slot's previous worker
            direct.bind(path)
        except OSError as exc:
            log.warning('%s: no direct signal socket (%s): signals come through the master', where, exc)
    _signals.set_direct_channel(direct.fileno())  # uwsgi.signal_wait reads it too
    try:
        while not stop.requested:
            # The wait (GIL released) and the reads are the core's: one call per wake-up.
            wake_fd = wakeup[0] if wakeup is not None else -1
            for num in _core.recv_signals(chan.fileno(), queue.fileno(), wake_fd, None, direct.fileno()):
                if stop.requested:
                    break
                _signals.run_handler(num, where=where, harakiri=harakiri)
    finally:
        if wakeup is not None:
            give_back_wakeup_fd(wakeup)
        _signals.set_direct_channel(-1)
        direct.close()
    return 0
