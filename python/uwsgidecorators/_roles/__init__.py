"""The loops of the processes the master forks, one module per role (``spooler``, ``worker``;
mules next), and what every child does once the master's plumbing is closed (:func:`enter_role`).

The master (``uwsgidecorators.master``) keeps supervision: it forks, closes its own descriptors in
the child, then hands over to a role. A role imports the runtime and, where uWSGI's semantics need
it, the decorators (a spooler calls ``uwsgi.spooler``, which ``import uwsgidecorators`` installs).
"""

from __future__ import annotations

import os
import socket

from _uwsgidecorators_runtime.log import format_exc, get_logger
from _uwsgidecorators_runtime import _core
from _uwsgidecorators_runtime import config as _config
from _uwsgidecorators_runtime import signals as _signals
from _uwsgidecorators_runtime.shared import F_PID

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import SIG_DFL as SIG_DFL
    from signal import SIG_IGN as SIG_IGN
    from signal import pthread_sigmask as pthread_sigmask
    from signal import signal as set_handler

    from _uwsgidecorators_runtime.shared import SharedTable

    from .spooler import StopFlag
else:
    # The C functions under `signal`'s wrappers, for what a child runs right after the fork: the
    # wrappers turn numbers into enum members and back, and that Python code with the members it
    # touches, run for the first time in a child, copies ~0.1 MiB of the master's pages into
    # each child (bench/bench_memory.py). Same arguments; plain ints come back.
    from _signal import SIG_DFL, SIG_IGN, pthread_sigmask
    from _signal import signal as set_handler

__all__ = ['SIG_DFL', 'SIG_IGN', 'enter_role', 'pthread_sigmask', 'set_handler']

# The lines a child logs before its loop runs are the master's (as they were when it ran them).
log = get_logger('uwsgidecorators.master')


def enter_role(
    kind: _core.Kind,
    *,
    ident: int,
    slot: int,
    table: SharedTable,
    region: _core.Region | None,
    master_pid: int,
    spooler_dir: bytes | None,
    channels: tuple[socket.socket, socket.socket],
    where: str,
    harakiri: float,
    stop: StopFlag,
    monitors: _core.WorkerMonitors | None = None,
) -> None:
    """Become the child of ``kind`` in ``slot``: publish the pid, set what the process knows (its role, the
    shared table and region, its signal channels: private, then its kind's queue, and the file ``monitors`` a
    worker reads itself) and run ``post_fork_hook``."""
    table.put(slot, F_PID, os.getpid())
    st = _config.state()
    st.role = kind.label
    st.worker_id = ident if kind == _core.Kind.WORKER else 0
    st.master_pid = master_pid
    st.slot = slot
    st.table = table
    st.region = region
    if spooler_dir is not None:
        st.spooler_dir = spooler_dir

    # uwsgi.signal_wait reads these (from a @postfork function, a thread, a handler).
    chan, queue = channels
    _signals.set_channels(
        chan.fileno(),
        queue.fileno(),
        where=where,
        harakiri=harakiri,
        stopping=lambda: stop.requested,
    )
    _signals.set_worker_monitors(monitors)

    import uwsgi

    hook = getattr(uwsgi, 'post_fork_hook', None)
    if hook is not None:
        try:
            hook()
        except Exception:
            log.error('%s: post_fork_hook raised:\n%s', where, format_exc())
