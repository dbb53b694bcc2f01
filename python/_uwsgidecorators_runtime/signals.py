"""uWSGI signals in this process: the handler table, and how each call reaches the master.

uWSGI keeps one 256-entry table per process (SPEC 4): the master's, copied into every worker at
fork, and each worker's own run-time registrations. We keep the same split:

* **master** (``attach_master`` was called with its ``_core.MasterLoop``): ``register_signal``
  records the handler here *and* the target in the loop, which refuses a second registration of
  a number, as uWSGI's master does. Timers, cron entries and file monitors go to the loop.
  ``signal(n)`` routes at once.
* **worker** (forked by the master, so it inherits the master's table): ``register_signal`` may
  overwrite; the handler stays in this process and the target is sent to the master (an ``R``
  control datagram) so that the signal is routed by it from now on. Timers, cron entries and
  file monitors are checked here (the caller gets the error at once), then sent to the master
  (``t``, ``c``, ``f`` datagrams); what the master still refuses is in its log.
* **spooler**: refuses ``register_signal`` (so does uWSGI: only the master and the workers may
  register); it runs master-registered handlers for ``target='spooler'``/``'spoolers'``, and adds
  timers, cron entries and file monitors as a worker does (uWSGI's shared tables let any process
  of the instance add them).
* **any other process** (a gunicorn worker, a shell, a test): ``signal(n)`` reaches the master
  through its control socket: ``configure(control=...)``, else ``UWSGIDECORATORS_CONTROL``, else
  ``<first spool dir>/.uwsgidecorators/control`` when it exists; registrations, timers and
  cron entries are recorded or checked but have no master to run them, so they warn once and
  do nothing else (a task module stays importable there).

Control datagrams to the master are built by the core (``_core.control_*``); their format is
defined and documented once, in ``src/proto/control.rs``.
"""

from __future__ import annotations

import math
import signal as _signal
import operator
import os
import socket
import sys
import threading
import time
from collections.abc import Callable

from .log import format_exc, get_logger
from . import config as _config
from .shared import F_TASK_DEADLINE, qualified_name
from .exceptions import FileMonitorPathError, MasterNotFoundError, NoMasterWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from . import _core

__all__ = [
    'add_cron',
    'add_file_monitor',
    'add_timer',
    'attach_master',
    'check_target',
    'detach_master',
    'handler_for',
    'register_signal',
    'reset',
    'run_handler',
    'send_signal',
    'set_test_clock_offset',
    'set_channels',
    'signal_received',
    'signal_registered',
    'signal_wait',
    'signum',
]

log = get_logger('uwsgidecorators.signal')

Handler = Callable[[int], object]

_handlers: dict[int, Handler] = {}
_targets: dict[int, str] = {}
_loop: Any = None
#: in the master's children: a ``_core.DirectSender`` (signals aimed at one worker skip the master)
_direct: Any = None
_sender: socket.socket | None = None
_sender_pid = 0
_sender_lock = threading.Lock()
_warned: set[str] = set()

#: how long a blocked send to the master's control socket may wait (its queue is full only
#: while the master is stalled)
_SEND_TIMEOUT = 5.0
#: uWSGI's default --socket-timeout, used for remote signals
_REMOTE_TIMEOUT = 4.0
#: the largest control datagram the master reads whole (its receive buffer)
_CONTROL_MAX = 4096
#: ``_master_loop``'s answer in a child of the master: send a control datagram
_TO_MASTER = object()
#: the raise datagram of every signal number, built on first use
_RAISE: tuple[bytes, ...] = ()


# ---------------------------------------------------------------------------------------------
# process roles


def attach_master(loop: Any) -> None:
    """This process is the master: registrations and timers go to ``loop``."""
    global _loop
    _loop = loop


def detach_master(direct: Any = None) -> None:
    """In a child right after fork: the master's loop is not ours to use any more (the master
    closes the child's copy with ``MasterLoop.close_in_child``); timers, cron entries and file
    monitors go to the master as control datagrams from now on. ``direct``: the child's
    ``_core.DirectSender`` (taken from the loop before closing it)."""
    global _loop, _sender, _sender_pid, _direct
    _loop = None
    _sender = None
    _sender_pid = 0
    _direct = direct


def reset() -> None:
    """Forget every handler (tests)."""
    global _loop, _direct
    _handlers.clear()
    _targets.clear()
    _warned.clear()
    _loop = None
    _direct = None
    _forget_attached()
    _forget_channels()


def _role() -> str | None:
    return _config.state().role


def _warn_no_master(fname: str, stacklevel: int = 4) -> None:
    """Once per process: what is set up here will not run here."""
    if _warned:
        return
    _warned.add(fname)
    import warnings

    # stacklevel: this function, ours, the uwsgi shim's, then the caller
    warnings.warn(
        f'uwsgi.{fname}(): no uwsgidecorators master in this process: signal handlers, timers, cron '
        'entries and file monitors set up here are checked, then never run here (the master that '
        'imports this module runs them). This warning is issued once per process.',
        NoMasterWarning,
        stacklevel=stacklevel,
    )


# ---------------------------------------------------------------------------------------------
# argument checks (the same answers in every process, master or not)


def signum(num: Any, what: str = '') -> int:
    """A uWSGI signal number: an int from 0 to 255, else TypeError or ValueError naming it.

    uWSGI parses it with the ``B`` format, which takes any int modulo 256 (300 is signal 44,
    -1 is 255); we refuse those. ``what``: the start of the message (``unable to add timer``).
    """
    if isinstance(num, float):
        raise TypeError("'float' object cannot be interpreted as an integer")
    n = operator.index(num)
    if not 0 <= n <= 255:
        prefix = f'{what}: ' if what else ''
        raise ValueError(f'{prefix}signal number {n} is out of range: uWSGI signals are 0 to 255')
    return n


def check_target(target: Any) -> str:
    """A uWSGI signal target string, or TypeError/ValueError (the master's answer, in any process:
    the core's parser decides)."""
    if not isinstance(target, str):
        raise TypeError(f'signal target must be str, not {type(target).__name__}')
    if len(target.encode('utf-8', 'surrogateescape')) > 63:
        raise ValueError(f'unable to register signal: signal target "{target}" is longer than 63 bytes')
    from . import _core

    _core.check_signal_target(target)
    return target


def _seconds(secs: Any, what: str) -> float:
    if not isinstance(secs, (int, float)):
        import numbers  # Decimal, Fraction, numpy's scalars...

        if not isinstance(secs, numbers.Real):
            raise TypeError(f'{what} period must be a number of seconds, not {type(secs).__name__}')
    value = float(secs)
    # The master counts in microseconds: a period that rounds to 0 us would never fire (uWSGI
    # accepts 0 and the timer never fires).
    if not math.isfinite(value) or not 0.0000005 <= value <= 1e9:
        raise ValueError(
            f'unable to add {what}: the period must be a number of seconds over 0 (at least 1 us) and at most 1e9, '
            f'got {secs!r}'
        )
    return value


# ---------------------------------------------------------------------------------------------
# the table


def signal_registered(num: Any) -> bool | None:
    """True if this process has a handler for ``num``, None (not False, as in uWSGI) otherwise."""
    return True if signum(num) in _handlers else None


def handler_for(num: int) -> Handler | None:
    return _handlers.get(num)


def register_signal(num: Any, target: Any, handler: Any) -> None:
    n = signum(num, 'unable to register signal')
    if not isinstance(target, str):
        raise TypeError(f'register_signal() argument 2 must be str, not {type(target).__name__}')
    if not callable(handler):
        raise TypeError(f'signal handler must be callable, not {type(handler).__name__}')
    loop = _loop
    if loop is not None:
        try:
            loop.register_signal(n, target)
        except ValueError as exc:
            raise ValueError(f'unable to register signal: {exc}') from None
        _handlers[n] = handler
        _targets[n] = target
        log.info('[uwsgi-signal] signum %d registered (wid: 0 target: %s)', n, target or 'default, any worker')
        return
    check_target(target)
    role = _role()
    if role in ('spooler', 'mule'):
        raise ValueError(
            f'unable to register signal: only the master and the workers can register signal handlers '
            f'(this is a {role}); register it in a module the master imports (--import)'
        )
    _handlers[n] = handler
    _targets[n] = target
    if role == 'worker':
        # From now on the master routes n to this registration (uWSGI would keep routing by the
        # master's entry); only this worker has the handler. The shared direct table is updated
        # here first, so this worker's own next raise already follows it.
        if _direct is not None:
            _direct.register(n, target)
        from . import _core

        _send(_core.control_register(n, target))
        return
    _warn_no_master('register_signal')


# ---------------------------------------------------------------------------------------------
# sources: timers, cron, file monitors


def _master_loop(fname: str) -> Any:
    """Where a timer, cron entry or file monitor goes: the loop in the master, ``_TO_MASTER`` in
    its children (a control datagram), None (after one warning) in any other process."""
    if _loop is not None:
        return _loop
    role = _role()
    if role is not None and role != 'master':
        return _TO_MASTER
    _warn_no_master(fname, stacklevel=5)
    return None


def _send_to_master(what: str, msg: bytes) -> None:
    if len(msg) > _CONTROL_MAX:
        raise ValueError(f'unable to add {what}: too long to send to the master ({len(msg)} bytes)')
    _send(msg)


def add_timer(num: Any, secs: Any, iterations: Any = 0, *, rb: bool = False) -> None:
    what = 'rb_timer' if rb else 'timer'
    n = signum(num, f'unable to add {what}')
    period = _seconds(secs, what)
    count = operator.index(iterations)
    if not 0 <= count < 2**32:
        raise ValueError(f'unable to add {what}: iterations must be >= 0 and < 2**32, got {count}')
    loop = _master_loop(f'add_{what}')
    if loop is None:
        return
    if loop is _TO_MASTER:
        from . import _core

        _send_to_master(what, _core.control_timer(n, period, count))
        return
    try:
        loop.add_timer(n, period, count)
    except ValueError as exc:
        raise ValueError(f'unable to add {what}: {exc}') from None


def cron_spec(minute: Any, hour: Any, day: Any, month: Any, weekday: Any) -> Any:
    """A ``_core.CronSpec`` from uWSGI's five integers or from one crontab string."""
    return _cron_spec_and_wire(minute, hour, day, month, weekday)[0]


def _cron_spec_and_wire(
    minute: Any, hour: Any, day: Any, month: Any, weekday: Any
) -> tuple[Any, str | tuple[int, int, int, int, int]]:
    """The ``_core.CronSpec`` and its form in a cron control datagram (the crontab text, or the
    five integers)."""
    from . import _core

    if isinstance(minute, str):
        if (hour, day, month, weekday) != (None, None, None, None):
            raise TypeError('add_cron() takes either one crontab string or five integers')
        try:
            return _core.CronSpec(minute), minute
        except ValueError as exc:
            raise ValueError(f'unable to add cron: {exc}') from None
    fields = (minute, hour, day, month, weekday)
    missing = [name for name, v in zip(('hour', 'day', 'month', 'weekday'), fields[1:]) if v is None]
    if missing:
        raise TypeError(f'add_cron() missing {len(missing)} required argument(s): {", ".join(missing)}')
    ints = []
    for v in fields:
        if isinstance(v, float):
            raise TypeError("'float' object cannot be interpreted as an integer")
        ints.append(operator.index(v))
    try:
        # OverflowError past 64 bits, as the master would; ValueError for a value out of its
        # field's range or a date that never occurs (the core names the field and the value)
        spec = _core.CronSpec.from_uwsgi(*ints)
    except ValueError as exc:
        raise ValueError(f'unable to add cron: {exc}') from None
    return spec, (ints[0], ints[1], ints[2], ints[3], ints[4])


def add_cron(
    num: Any,
    minute: Any,
    hour: Any = None,
    day: Any = None,
    month: Any = None,
    weekday: Any = None,
    *,
    tz: str | None = None,
    catch_up: bool = False,
) -> bool:
    n = signum(num, 'unable to add cron')
    spec, wire = _cron_spec_and_wire(minute, hour, day, month, weekday)
    if tz is not None and not isinstance(tz, str):
        raise TypeError(f'tz must be a time zone name (str), not {type(tz).__name__}')
    try:
        # Checks the zone name in every process, with the time zone database the master uses.
        spec.next_fire(time.time(), tz)
    except ValueError as exc:
        raise ValueError(f'unable to add cron: {exc}') from None
    loop = _master_loop('add_cron')
    if loop is _TO_MASTER:
        tzb = (tz or '').encode('utf-8')
        if len(tzb) > 255:
            raise ValueError(f'unable to add cron: time zone name longer than 255 bytes: {tz!r}')
        from . import _core

        _send_to_master('cron', _core.control_cron(n, bool(catch_up), tz or None, wire))
    elif loop is not None:
        try:
            loop.add_cron(n, spec, tz=tz, catch_up=bool(catch_up))
        except ValueError as exc:
            raise ValueError(f'unable to add cron: {exc}') from None
    return True


def add_file_monitor(num: Any, path: Any, *, recursive: bool = False) -> None:
    n = signum(num, 'unable to add file monitor')
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f'file monitor path must be str, bytes or os.PathLike, not {type(path).__name__}')
    fspath = os.fspath(path)

    def missing(detail: str = '') -> FileMonitorPathError:
        shown = os.fsdecode(fspath)
        return FileMonitorPathError(
            2,
            f'unable to add file monitor: {shown!r} does not exist (uWSGI would accept it and never fire)'
            + (f' [{detail}]' if detail else ''),
            shown,
        )

    loop = _loop
    if loop is None:
        if not os.path.exists(fspath):
            raise missing()
        if _master_loop('add_file_monitor') is _TO_MASTER:
            # Absolute: the master's working directory is not necessarily this process's.
            raw = os.fsencode(fspath)
            if not os.path.isabs(raw):
                raw = os.path.join(os.fsencode(os.getcwd()), raw)
            from . import _core

            _send_to_master('file monitor', _core.control_file_monitor(n, bool(recursive), raw))
        return
    try:
        loop.add_file_monitor(n, fspath, bool(recursive))
    except FileNotFoundError as exc:
        raise missing(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# raising


def send_signal(num: Any, remote: Any = None) -> None:
    """``uwsgi.signal(num[, remote])``."""
    n = signum(num, 'unable to raise signal')
    if remote is not None:
        _remote_signal(n, remote)
        return
    loop = _loop
    if loop is not None:
        loop.raise_signal(n)
        return
    direct = _direct
    if direct is None:
        direct = _attached_direct()
    if direct is not None and direct.send(n):
        return  # aimed at one worker and delivered to it: one hop, the master is not involved
    _send((_RAISE or _raise_datagrams())[n])


def request_reload() -> bool:
    """``uwsgi.reload()``: ask the master for a graceful reload, through its control socket (the
    master sends it to itself too, so every way in is handled at one place of its loop)."""
    from . import _core

    _send(_core.control_reload(os.getpid()))
    return True


def _raise_datagrams() -> tuple[bytes, ...]:
    global _RAISE
    from . import _core

    _RAISE = tuple(_core.control_raise(n) for n in range(256))
    return _RAISE


#: in a process the master did not fork: [its direct sender on the master's region, or None]
#: (empty: not looked up yet; forgotten on a configuration change and in a forked child)
_attached: list[Any] = []


def _forget_attached() -> None:
    _attached.clear()


_config.on_change.append(_forget_attached)
os.register_at_fork(after_in_child=_forget_attached)


def _attached_direct() -> Any:
    """A process the master did not fork delivers to one worker directly too, through the
    master's region (found as locks find it); without one, everything goes to the master.
    Looked up once: no system call is added to a signal's path."""
    if _attached:
        return _attached[0]
    sender = None
    try:
        control = _control_path()
        from . import region as _region

        region = _region.region()
        if region.path is not None:
            sender = region.direct_sender(control)
    except (MasterNotFoundError, OSError):
        sender = None  # _send says what is missing
    _attached[:] = [sender]
    return sender


def set_test_clock_offset(seconds: int, control: str | None = None) -> None:
    """Move the master's cron wall clock to ``now + seconds`` (its test clock must be on:
    ``UWSGIDECORATORS_TEST_CLOCK=1`` in the master's environment)."""
    offset = operator.index(seconds)
    if _loop is not None and control is None:
        _loop.set_clock_offset(offset)
        return
    from . import _core

    _send(_core.control_clock(offset), control)


#: where a master puts its control socket when no --control-socket is given and it has a spool
#: dir: inside the first one (the one every process of the deployment already knows)
CONTROL_DIR = '.uwsgidecorators'


#: a Unix socket path holds at most 107 bytes; the direct sockets add ``.w<N>`` to the control's
_SUN_PATH_MAX = 107 - len('.w9999')


def default_control_path(spooler: bytes | str) -> str:
    """The control socket of a master whose first spool dir is ``spooler``: inside it, or, when
    that path is too long for a Unix socket, ``/tmp/uwsgidecorators-<hash of the spool dir's
    realpath>/control``, which every process that knows the spool dir derives alike."""
    path = os.path.join(os.fsdecode(spooler), CONTROL_DIR, 'control')
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    import hashlib

    digest = hashlib.sha256(os.fsencode(os.path.realpath(spooler))).hexdigest()[:24]
    return os.path.join('/tmp', f'uwsgidecorators-{digest}', 'control')


def _control_path() -> str:
    st = _config.state()
    path = st.control or os.environ.get(_config.ENV_CONTROL, '')
    if path:
        return path
    if st.spoolers:
        guess = default_control_path(st.spoolers[0])
        if os.path.exists(guess):
            return guess
    raise MasterNotFoundError(
        'unable to send the signal: this process knows no uwsgidecorators master (the master sets '
        f'{_config.ENV_CONTROL} for its children; elsewhere give the master\'s --control-socket path in '
        f'{_config.ENV_CONTROL} or configure(control=...), or configure the master\'s first spool dir, '
        f'whose {CONTROL_DIR}/control it uses by default)'
    )


def _new_sender() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # A kernel send timeout on a blocking socket: one sendto per signal. (Python's settimeout
    # would poll before every send.)
    secs = int(_SEND_TIMEOUT)
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack('ll', secs, int((_SEND_TIMEOUT - secs) * 1e6)))
    return sock


def _forget_sender() -> None:
    global _sender, _sender_pid
    _sender, _sender_pid = None, 0


# A forked child must not share its parent's socket (and must not pay a getpid per signal to
# find out).
os.register_at_fork(after_in_child=_forget_sender)


def _send(msg: bytes, control: str | None = None) -> None:
    global _sender, _sender_pid
    path = control or _control_path()
    sender = _sender
    if sender is None:
        with _sender_lock:
            if _sender is None:
                _sender, _sender_pid = _new_sender(), os.getpid()
            sender = _sender
    try:
        sender.sendto(msg, path)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise MasterNotFoundError(
            f'unable to send the signal: the master is not listening on {path} ({exc.strerror or exc})'
        ) from None
    except (BlockingIOError, TimeoutError):
        raise MasterNotFoundError(
            f'unable to send the signal: the master did not read its control socket {path} for {_SEND_TIMEOUT:g} s'
        ) from None


def _remote_signal(n: int, remote: Any) -> None:
    """uWSGI's remote signal: a uwsgi packet (modifier1 110, modifier2 = num) to a node that runs
    the ``signal`` plugin; it answers modifier2 1 (delivered) or 0 (refused)."""
    if not isinstance(remote, str):
        raise TypeError(f'signal() argument 2 must be str, not {type(remote).__name__}')
    answer = -1
    try:
        if ':' in remote and not remote.startswith('/'):
            host, _, port = remote.rpartition(':')
            conn = socket.create_connection((host or '127.0.0.1', int(port)), timeout=_REMOTE_TIMEOUT)
        else:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(_REMOTE_TIMEOUT)
            conn.connect(remote)
        with conn:
            conn.sendall(bytes([110, 0, 0, n]))
            header = b''
            while len(header) < 4:
                chunk = conn.recv(4 - len(header))
                if not chunk:
                    break
                header += chunk
            if len(header) == 4:
                answer = header[3]
    except (OSError, ValueError):
        answer = -1
    if answer == -1:
        raise OSError(f'unable to deliver signal {n} to node {remote}')
    if answer == 0:
        raise ValueError(f'node {remote} rejected signal {n}')


# ---------------------------------------------------------------------------------------------
# running a handler (workers, spoolers)


def run_handler(num: int, *, where: str, harakiri: float = 0) -> bool:
    """Run this process's handler for ``num`` as ``handler(num)``; exceptions are logged.

    ``harakiri`` > 0 arms the master's deadline for this process around the call (``--harakiri``
    in workers, ``--spooler-harakiri`` in spoolers). Returns False when there is no handler.
    """
    if _waiters:
        _notify(num)
    handler = _handlers.get(num)
    if handler is None:
        log.error(
            '[uwsgi-signal] %s: signal %d has no handler in this process (registered in another '
            "worker's memory area, or never): nothing runs",
            where,
            num,
        )
        return False
    st = _config.state()
    table, slot = st.table, st.slot
    if table is not None and slot is not None and harakiri > 0:
        table.set_name(slot, F_TASK_DEADLINE, qualified_name(handler))
        table.arm(slot, F_TASK_DEADLINE, harakiri)
    try:
        handler(num)
    except Exception:
        log.error('[uwsgi-signal] %s: handler of signal %d raised:\n%s', where, num, format_exc())
    finally:
        if table is not None and slot is not None and harakiri > 0:
            table.put(slot, F_TASK_DEADLINE, 0)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return True


# ---------------------------------------------------------------------------------------------
# waiting for a signal: uwsgi.signal_wait([num]) / uwsgi.signal_received()
#
# As in uWSGI (core/signal.c uwsgi_signal_wait, the Python plugin's py_uwsgi_signal_wait): the
# caller reads this process's signal channels itself, runs the handler of every signal it reads,
# and returns b'' once it has read the one it waits for (any, without an argument);
# signal_received() then answers that number (-1 during the wait, 0 before any wait). Signals
# read together with the awaited one in one wake-up have their handlers run before the wait
# returns. Another thread of the process (the worker loop, another wait) may read the awaited
# signal first: it runs the handler and tells the waiters (_notify), whose wait then ends too.


class _Channels:
    """Where this process receives uWSGI signals (set by the master in each child it forks, before
    ``post_fork_hook`` runs; a mule will set its own the same way)."""

    __slots__ = ('direct', 'harakiri', 'monitors', 'private', 'shared', 'stopping', 'where')

    def __init__(
        self, private: int, shared: int, where: str, harakiri: float, stopping: Callable[[], bool] | None
    ) -> None:
        self.private = private
        self.shared = shared
        self.direct = -1
        self.monitors: _core.WorkerMonitors | None = None
        self.where = where
        self.harakiri = harakiri
        self.stopping = stopping


class _Waiter:
    """One ``signal_wait`` call: the number it waits for (None: any), and a pipe another thread
    writes to when it ran that signal."""

    __slots__ = ('got', 'pipe', 'want')

    def __init__(self, want: int | None) -> None:
        self.want = want
        self.got: int | None = None
        self.pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)


_channels: _Channels | None = None
_waiters: list[_Waiter] = []
_waiters_lock = threading.Lock()
#: per thread, as uWSGI keeps it per request: what the last signal_wait received
_received = threading.local()


def set_channels(
    private: int,
    shared: int,
    *,
    where: str,
    harakiri: float = 0,
    stopping: Callable[[], bool] | None = None,
) -> None:
    """This process receives signals on ``private`` (its own channel) and ``shared`` (its kind's
    queue); ``where`` names it in logs, ``harakiri`` arms the master's deadline around handlers,
    ``stopping()`` says the process was asked to stop (a wait then raises)."""
    global _channels
    _channels = _Channels(private, shared, where, harakiri, stopping)


def set_direct_channel(fd: int) -> None:
    """A worker's direct socket (signals aimed at it alone), -1 when it is closed."""
    if _channels is not None:
        _channels.direct = fd


def set_worker_monitors(monitors: _core.WorkerMonitors | None) -> None:
    """The file monitors a worker reads itself (one hop), None when it stops reading them."""
    if _channels is not None:
        _channels.monitors = monitors


def _forget_channels() -> None:
    global _channels
    _channels = None
    _waiters.clear()


# A child the master did not set up (forked by user code) does not read its parent's channels.
os.register_at_fork(after_in_child=_forget_channels)


def _notify(num: int) -> None:
    with _waiters_lock:
        for w in _waiters:
            if w.got is None and (w.want is None or w.want == num):
                w.got = num
                try:
                    os.write(w.pipe[1], b'\0')
                except OSError:
                    pass


def signal_received() -> int:
    """The signal that ended this thread's last ``signal_wait`` (-1 while one waits, 0 before)."""
    value: int = getattr(_received, 'value', 0)
    return value


def signal_wait(num: Any = None) -> bytes:
    """``uwsgi.signal_wait([num])``: wait for a signal (``num``, or any), running the handler of
    every signal read meanwhile; returns b''. The GIL is released while waiting; Ctrl-C and
    SIGTERM end it (``SystemError`` as in uWSGI, when the process is asked to stop)."""
    want = None if num is None else signum(num, 'unable to wait for signal')
    ch = _channels
    if ch is None:
        role = _role()
        if role == 'master' or _loop is not None:
            raise RuntimeError(
                'uwsgi.signal_wait(): the master routes signals to its workers and spoolers and receives '
                'none itself; wait in a worker or a spooler (a @postfork function, or a thread it starts)'
            )
        raise MasterNotFoundError(
            'uwsgi.signal_wait(): no uwsgidecorators master runs this process, so no signal can reach '
            'it; only the workers and spoolers the master forks receive signals (uwsgidecorators '
            '--master ... --import this module)'
        )
    from . import _core

    _received.value = -1
    waiter = _Waiter(want)
    with _waiters_lock:
        _waiters.append(waiter)
    # In the main thread, a Unix signal (Ctrl-C, SIGTERM) must end the wait at once: this wait
    # becomes the process's wake-up fd meanwhile (the one it replaces is woken after, if a signal
    # came), so it sleeps without polling. Elsewhere no Python handler runs: the waiter's own pipe
    # is the wake-up fd (a stopping process leaves such a wait behind: it exits when its main
    # thread is done).
    main = threading.current_thread() is threading.main_thread()
    wake: tuple[int, int] | None = None
    previous = -1
    if main:
        wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        previous = _signal.set_wakeup_fd(wake[1], warn_on_full_buffer=False)
    unix_signal = False
    try:
        while True:
            if main:
                assert wake is not None
                nums = _core.recv_signals(
                    ch.private, ch.shared, wake[0], None, ch.direct, waiter.pipe[0], monitors=ch.monitors
                )
            else:
                nums = _core.recv_signals(ch.private, ch.shared, waiter.pipe[0], None, ch.direct, monitors=ch.monitors)
            if not nums and main and waiter.got is None:
                unix_signal = True
            for n in nums:
                run_handler(n, where=ch.where, harakiri=ch.harakiri)
            if waiter.got is not None:
                break
            if ch.stopping is not None and ch.stopping():
                raise SystemError('error waiting for signal: this process is stopping')
    finally:
        with _waiters_lock:
            _waiters.remove(waiter)
        for fd in waiter.pipe:
            os.close(fd)
        if wake is not None:
            current = _signal.set_wakeup_fd(previous, warn_on_full_buffer=False)
            if current != wake[1]:
                _signal.set_wakeup_fd(current, warn_on_full_buffer=False)  # replaced meanwhile: keep it
            if unix_signal and previous >= 0:
                try:
                    os.write(previous, b'\0')  # the replaced wake-up fd's owner looks at its flags too
                except OSError:
                    pass
            for fd in wake:
                os.close(fd)
    _received.value = waiter.got
    return b''
