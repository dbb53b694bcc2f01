"""Mule messages: the queues ``uwsgi.mule_msg`` (``_core.mule_msg``) sends on, ``farm_msg`` (any
process that finds the master), and in a mule ``mule_get_msg``, ``farm_get_msg``, ``in_farm``,
``mule_id`` and the built-in loop.

The queues are the core's (``_core.MuleQueues``): a file next to the master's control socket,
``<control>.mules``, that the master creates before it forks. A process finds it as it finds the
control socket (``UWSGIDECORATORS_CONTROL``, ``configure(control=...)``, the first spool dir), so a
gunicorn or granian worker the master did not fork sends as the master's own children do.

Delivery: a message to mule N reaches mule N; to no mule (or 0) exactly one mule takes it; to a
farm, exactly one mule of the farm. A queue is bounded: a sender waits up to
``SEND_TIMEOUT`` seconds for room, then ``MuleQueueFullError``. A message is acknowledged when
its mule has run it (the built-in loop) or asks for the next one (``mule_get_msg``); a mule that
dies before that gets its message run again by another (or its respawned self): at least once
for that message, exactly once for every other.
"""

from __future__ import annotations

import os
import sys
import threading

from .log import format_exc, format_exception, get_logger
from . import _core
from . import config as _config
from .exceptions import MasterNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable

__all__ = [
    'SEND_TIMEOUT',
    'MuleState',
    'farm_get_msg',
    'farm_msg',
    'in_farm',
    'mule_get_msg',
    'mule_id',
    'register_sender',
    'queues',
]

log = get_logger('uwsgidecorators.mule')

SEND_TIMEOUT = 5.0
"""How long a sender waits for room in a full queue before ``MuleQueueFullError``, in seconds, by
default: the master's ``--mule-send-timeout`` (kept in the queue file, so attached processes follow
it), or this process's ``UWSGIDECORATORS_MULE_SEND_TIMEOUT``."""

ENV_SEND_TIMEOUT = 'UWSGIDECORATORS_MULE_SEND_TIMEOUT'


class MuleState:
    """What a mule process knows (set by its role before ``post_fork_hook`` runs)."""

    __slots__ = (
        'mule_id', 'farms', 'private', 'shared', 'farm_signals', 'wake_sock', 'where', 'harakiri', 'stopping',
        'wake_fd',
    )

    mule_id: int
    farms: list[str]
    private: int
    shared: int
    farm_signals: list[int]
    wake_sock: int
    where: str
    harakiri: float
    stopping: Callable[[], bool]
    wake_fd: Callable[[], int]

    def __init__(
        self,
        mule_id: int,
        farms: list[str],
        private: int = -1,
        shared: int = -1,
        farm_signals: list[int] | None = None,
        wake_sock: int = -1,
        where: str = '',
        harakiri: float = 0,
        stopping: Callable[[], bool] = lambda: False,
        wake_fd: Callable[[], int] = lambda: -1,
    ) -> None:
        self.mule_id = mule_id
        self.farms = farms
        self.private = private
        self.shared = shared
        self.farm_signals = [] if farm_signals is None else farm_signals
        self.wake_sock = wake_sock
        self.where = where
        self.harakiri = harakiri
        self.stopping = stopping
        self.wake_fd = wake_fd


_queues: _core.MuleQueues | None = None
_queues_pid = 0
_mule: MuleState | None = None
# Per thread: rx = (generation, its _core.MuleReceiver), built at its first wait.
_held = threading.local()
# Bumped whenever what a receiver was built from changes (the mule, the queues).
_gen = 0
_timeout: float | None = None
_timeout_read = False
# This module, whose ``_gen`` a receiver's serve loop watches.
_STATE = sys.modules[__name__]


def _send_timeout() -> float | None:
    """This process's own timeout (``UWSGIDECORATORS_MULE_SEND_TIMEOUT``), else None: the
    master's. Read once (again after ``reset``)."""
    global _timeout, _timeout_read
    if not _timeout_read:
        raw = os.environ.get(ENV_SEND_TIMEOUT, '')
        if raw:
            try:
                _timeout = float(raw)
            except ValueError:
                raise ValueError(f'{ENV_SEND_TIMEOUT} must be a number of seconds, got {raw!r}') from None
        _timeout_read = True
    return _timeout


def _sender() -> _core.MuleQueues:
    """``queues()``, with the send timeout read (the first send's slow path)."""
    _send_timeout()
    return queues()


def set_queues(q: _core.MuleQueues) -> None:
    """The master's own queues (it created them), inherited by its children."""
    global _queues, _queues_pid, _gen
    _queues, _queues_pid = q, os.getpid()
    _gen += 1
    _core.set_mule_sender(None)


def register_sender() -> _core.MuleQueues:
    """Called by ``_core.mule_msg`` (``uwsgi.mule_msg``) at its first send: find the queues and
    hand them, with this process's send timeout, to its later sends."""
    q = _sender()
    _core.set_mule_sender(q, _timeout)
    return q


def queues() -> _core.MuleQueues:
    """This process's ``_core.MuleQueues``, opened on first use."""
    global _queues, _queues_pid
    if _queues is not None:
        return _queues
    from .signals import _control_path

    try:
        control = _control_path()
    except MasterNotFoundError as exc:
        raise MasterNotFoundError(str(exc).replace('unable to send the signal', 'unable to send the mule message')) from None
    try:
        _queues = _core.MuleQueues.open(control)
    except FileNotFoundError:
        raise ValueError(
            f'no mule configured (the master of {control} runs no mule: start it with --mules N or --mule)'
        ) from None
    _queues_pid = os.getpid()
    return _queues


def reset() -> None:
    """Forget the queues (tests; configure())."""
    global _queues, _timeout, _timeout_read, _gen
    _queues = None
    _timeout = None
    _timeout_read = False
    _gen += 1
    _core.set_mule_sender(None)


def farm_msg(farm: str | bytes, message: bytes | str) -> bool:
    """uWSGI's ``farm_msg``: queue ``message`` for one mule of ``farm``."""
    q = _queues if _timeout_read and _queues is not None else _sender()
    q.send(message, farm, _timeout)
    return True


def set_mule(state: MuleState | None) -> None:
    global _mule, _gen
    _mule = state
    _gen += 1


def mule_id() -> int:
    return _mule.mule_id if _mule is not None else 0


def in_farm(name: str | bytes | None = None) -> bool | None:
    """True when this mule belongs to farm ``name`` (None: to any farm), else None (uWSGI's)."""
    if _mule is None:
        return None
    if name is None:
        return True if _mule.farms else None
    if isinstance(name, bytes):
        name = name.decode(errors='replace')
    return True if name in _mule.farms else None


def _receiver() -> _core.MuleReceiver:
    """This thread's receiver, (re)built for the current mule and queues; the message the
    previous one held is acknowledged (this thread asks for the next)."""
    m = _mule
    old = getattr(_held, 'rx', None)
    if old is not None:
        _held.rx = None
        old[1].ack()
    if m is None:
        raise ValueError('you can receive mule messages only in a mule !')
    rx = _core.MuleReceiver(
        _queues if _queues is not None else queues(),
        m.mule_id,
        m.private,
        m.shared,
        m.farm_signals,
        m.wake_fd(),
        m.wake_sock,
    )
    _held.rx = (_gen, rx)
    return rx


def _current_receiver() -> _core.MuleReceiver:
    """This thread's receiver, built anew when what it was built from changed."""
    try:
        gen, rx = _held.rx
    except (AttributeError, TypeError):
        gen, rx = -1, None
    if gen != _gen or rx is None:
        rx = _receiver()
    return rx  # type: ignore[no-any-return]


def ack_held() -> None:
    """Acknowledge the message this thread took last (it ran)."""
    t = getattr(_held, 'rx', None)
    if t is not None:
        t[1].ack()


def holding() -> bool:
    t = getattr(_held, 'rx', None)
    return t is not None and t[1].holding


def receive(signals: bool, own: bool, farms: bool, timeout: float | None) -> bytes | None:
    """Wait for this mule's next message (acknowledging the previous one first); signals read
    meanwhile run their handlers and end the wait with None, as in uWSGI."""
    rx = _current_receiver()
    m = _mule
    assert m is not None
    if m.stopping():
        rx.ack()
        raise SystemExit(0)
    message, nums = rx.recv(own, farms, signals, timeout)
    if message is not None:
        return message
    _signalled(m, nums, rx)
    return None


def serve(hook_of: object, stop: object) -> None:
    """The built-in loop of a plain mule, until ``stop.requested``: each message goes to
    ``hook_of.mule_msg_hook`` (``_core.MuleReceiver.serve`` runs the loop; see ``dispatch``)."""
    m = _mule
    assert m is not None
    direct = m.harakiri <= 0  # nothing to arm around the hook

    def on_error(exc: BaseException) -> None:
        log.error('%s: mule_msg_hook raised:\n%s', m.where, format_exception(exc))

    def signalled(nums: bytes) -> None:
        _signalled(m, nums, _held.rx[1])

    while True:
        rx = _current_receiver()
        if rx.serve(hook_of, stop, dispatch, direct, on_error, signalled, _STATE, _gen):
            return


def _signalled(m: MuleState, nums: bytes, rx: _core.MuleReceiver) -> None:
    """A wait ended without a message: run the handlers of the signals it read."""
    from . import signals as _signals

    for num in nums:
        _signals.run_handler(num, where=m.where, harakiri=m.harakiri)
    if m.stopping() and not rx.holding:
        raise SystemExit(0)


def mule_get_msg(
    signals: bool = True, farms: bool = True, buffer_size: int = 65536, timeout: int | float = -1
) -> bytes | None:
    """uWSGI's ``mule_get_msg``: the next message for this mule (its own queue, the any-mule
    queue, and with ``farms`` its farms' queues), or None when a signal was handled instead or
    ``timeout`` seconds passed (-1: no limit). ``buffer_size`` is accepted; messages are never
    truncated (the limit is ``--mule-msg-size``)."""
    return receive(signals, True, farms, None if timeout is None or timeout < 0 else timeout)


def farm_get_msg() -> bytes | None:
    """uWSGI's ``farm_get_msg``: the next message of one of this mule's farms."""
    if _mule is None:
        raise ValueError('you can receive farm messages only in a mule !')
    if not _mule.farms:
        return None
    return receive(True, False, True, None)


def dispatch(message: bytes, hook: Callable[[bytes], Any] | None) -> None:
    """The built-in loop's turn for one message: ``uwsgi.mule_msg_hook(message)``, or a log line
    when none is set (as uWSGI); exceptions are logged; ``--mule-harakiri`` is armed around it."""
    m = _mule
    assert m is not None
    if m.harakiri <= 0:  # the common case: nothing to arm
        try:
            if hook is None:
                log.info('*** mule %d received a %d bytes message ***', m.mule_id, len(message))
            else:
                hook(message)
        except Exception:
            log.error('%s: mule_msg_hook raised:\n%s', m.where, format_exc())
        return
    st = _config.state()
    table, slot = st.table, st.slot
    armed = table is not None and slot is not None
    if armed:
        from .shared import F_TASK_DEADLINE, qualified_name

        assert table is not None and slot is not None
        table.set_name(slot, F_TASK_DEADLINE, qualified_name(hook) if hook is not None else 'mule_msg_hook')
        table.arm(slot, F_TASK_DEADLINE, m.harakiri)
    try:
        if hook is None:
            log.info('*** mule %d received a %d bytes message ***', m.mule_id, len(message))
        else:
            hook(message)
    except Exception:
        log.error('%s: mule_msg_hook raised:\n%s', m.where, format_exc())
    finally:
        if armed:
            from .shared import F_TASK_DEADLINE

            assert table is not None and slot is not None
            table.put(slot, F_TASK_DEADLINE, 0)
