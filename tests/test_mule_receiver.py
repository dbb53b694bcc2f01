"""``_core.MuleReceiver``, a mule thread's receiving end (built once; ``uwsgi.mule_get_msg`` and
the built-in loop call its ``recv`` per message), on a real queue file with real sockets: what it
takes, holds and acknowledges, its wake-ups by a sender and by a signal, its timeout, and a fork
after it was built (the child claims as itself, not as its parent)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from _uwsgidecorators_runtime import _core


@pytest.fixture
def queues(tmp_path: Path) -> tuple[_core.MuleQueues, Path]:
    control = tmp_path / 'control'
    q, waiting = _core.MuleQueues.create(str(control), 2, [('pair', [1, 2])], 4096)
    assert waiting == 0
    return q, control


def _wake_sock(control: Path, mule: int) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.bind(_core.mule_wake_path(str(control), mule))
    return s


def test_takes_holds_and_acknowledges_one_message_at_a_time(queues: tuple[_core.MuleQueues, Path]) -> None:
    q, control = queues
    with pytest.raises(ValueError, match='mule 3'):
        _core.MuleReceiver(q, 3)
    rx = _core.MuleReceiver(q, 1)
    q.send(b'to one', 1)
    q.send('any (str)')
    q.send(b'farm', 'pair')
    q.send(b'to two', 2)
    assert not rx.holding
    assert rx.recv(True, True, True) == (b'to one', b'')
    assert rx.holding and q.pending() == 4
    assert rx.recv(True, True, True) == (b'farm', b'')  # the previous one acknowledged by this call
    assert q.pending() == 3
    assert rx.recv(True, False, True, 0) == (b'any (str)', b'')
    rx.ack()
    assert not rx.holding and q.pending() == 1
    rx.ack()  # nothing held: nothing happens
    assert rx.recv(True, True, True, 0.05) == (None, b'')  # mule 2's message is not ours
    rx2 = _core.MuleReceiver(q, 2)
    assert rx2.recv(False, True, True, 0) == (None, b''), 'farms only: not its own queue'
    assert rx2.recv(True, True, False, 0) == (b'to two', b'')
    rx2.ack()
    assert q.pending() == 0
    with pytest.raises(TypeError, match='bytes or str'):
        q.send(bytearray(b'x'), 1)


def test_a_sender_wakes_a_waiting_receiver_and_a_signal_ends_its_wait(queues: tuple[_core.MuleQueues, Path]) -> None:
    q, control = queues
    wake = _wake_sock(control, 1)
    priv_r, priv_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    priv_r.setblocking(False)
    rx = _core.MuleReceiver(q, 1, priv_r.fileno(), -1, [], -1, wake.fileno())
    sender = threading.Timer(0.3, q.send, (b'late', 1))
    sender.start()
    try:
        assert rx.recv(True, True, True, 30) == (b'late', b'')
    finally:
        sender.join()
    priv_w.send(b'\x11')
    message, nums = rx.recv(True, True, True, 30)
    assert message is None and list(nums) == [17]
    assert q.pending() == 0, 'the message taken before was acknowledged'
    # without signals the private channel is not read: the wait ends at its timeout
    priv_w.send(b'\x12')
    assert rx.recv(True, True, False, 0.1) == (None, b'')
    message, nums = rx.recv(True, True, True, 30)
    assert list(nums) == [18]
    for s in (wake, priv_r, priv_w):
        s.close()


def test_a_child_forked_after_the_receiver_was_built_claims_as_itself(queues: tuple[_core.MuleQueues, Path]) -> None:
    q, control = queues
    rx = _core.MuleReceiver(q, 1)
    q.send(b'parent', 1)
    assert rx.recv(True, True, True, 0) == (b'parent', b'')
    rx.ack()
    q.send(b'child', 1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 1
        try:
            if rx.recv(True, True, True, 5) == (b'child', b''):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert q.pending() == 1, 'the child took it and died before running it'
    # The child's claim carries the child's pid: reclaiming the dead child requeues it. A claim
    # under the parent's pid would stay claimed for ever (the parent is alive).
    assert q.reclaim(1, pid) == (1, 0)
    deadline = time.monotonic() + 5
    got = rx.recv(True, True, True, 5)
    assert got == (b'child', b'') and time.monotonic() < deadline
    rx.ack()
    assert q.pending() == 0


class _Stop:
    requested = False


class _Hooks:
    """What ``serve`` reads the hook from (``uwsgi`` in a mule), and its ``_gen`` watch."""

    def __init__(self) -> None:
        self.mule_msg_hook: object = None
        self._gen = 7


def test_serve_runs_each_message_through_the_hook_until_stop_and_acknowledges_the_last(
    queues: tuple[_core.MuleQueues, Path],
) -> None:
    q, control = queues
    priv_r, priv_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    priv_r.setblocking(False)
    rx = _core.MuleReceiver(q, 1, priv_r.fileno())
    stop, hooks = _Stop(), _Hooks()
    seen: list[object] = []

    def hook(message: bytes) -> None:
        seen.append(message)
        if message == b'boom':
            raise ValueError('bad message')
        if message == b'signal me':
            priv_w.send(b'\x05')
        if message == b'last':
            assert q.pending() == 2, "'last' runs before it is acknowledged ('after stop' waits)"
            stop.requested = True

    hooks.mule_msg_hook = hook
    for m in (b'one', b'boom', b'signal me'):
        q.send(m, 1)
    errors: list[BaseException] = []
    signalled: list[bytes] = []
    dispatched: list[object] = []

    def on_signals(nums: bytes) -> None:  # read once the queue is empty
        signalled.append(nums)
        q.send(b'last', 1)
        q.send(b'after stop', 1)

    done = rx.serve(hooks, stop, lambda m, h: dispatched.append((m, h)), True, errors.append, on_signals, hooks, 7)
    assert done is True
    assert seen == [b'one', b'boom', b'signal me', b'last']
    assert [str(e) for e in errors] == ['bad message'] and isinstance(errors[0], ValueError)
    tb = errors[0].__traceback__
    assert tb is not None and tb.tb_frame.f_code.co_name == 'hook', 'logged with where it was raised'
    assert [list(n) for n in signalled] == [[5]]
    assert dispatched == []
    assert not rx.holding and q.pending() == 1, "'last' acknowledged, 'after stop' still queued"
    priv_r.close()
    priv_w.close()


def test_serve_hands_messages_to_dispatch_without_a_hook_or_when_not_direct_and_returns_on_a_new_generation(
    queues: tuple[_core.MuleQueues, Path],
) -> None:
    q, _ = queues
    rx = _core.MuleReceiver(q, 1)
    stop, hooks = _Stop(), _Hooks()
    calls: list[tuple[bytes, object]] = []

    def hook(message: bytes) -> None:
        raise AssertionError('called through dispatch only')

    def dispatch(message: bytes, h: object) -> None:
        calls.append((message, h))
        if message == b'b':
            hooks.mule_msg_hook = hook
        if message == b'c':
            hooks._gen = 8  # what the receiver was built from changed

    for m in (b'a', b'b', b'c', b'd'):
        q.send(m, 1)
    assert rx.serve(hooks, stop, dispatch, False, lambda e: None, lambda n: None, hooks, 7) is False
    assert calls == [(b'a', None), (b'b', None), (b'c', hook)]
    assert rx.holding and q.pending() == 2, "'c' ran and waits for the next wait's acknowledgement"
    rx.ack()


def test_serve_lets_keyboard_interrupt_and_system_exit_through_with_the_message_unacknowledged(
    queues: tuple[_core.MuleQueues, Path],
) -> None:
    q, _ = queues
    rx = _core.MuleReceiver(q, 1)
    stop, hooks = _Stop(), _Hooks()
    for exc in (KeyboardInterrupt, SystemExit):

        def hook(message: bytes, exc: type[BaseException] = exc) -> None:
            raise exc()

        hooks.mule_msg_hook = hook
        q.send(b'x', 1)
        with pytest.raises(exc):
            rx.serve(hooks, stop, lambda m, h: None, True, lambda e: None, lambda n: None, hooks, 7)
        assert rx.holding and q.pending() == 1, 'not run to its end: not acknowledged'
        rx.ack()


def test_mule_msg_sends_on_the_registered_queues_and_finds_them_again_after_a_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _uwsgidecorators_runtime import mules

    a, _ = _core.MuleQueues.create(str(tmp_path / 'a'), 1, [], 4096)
    b, _ = _core.MuleQueues.create(str(tmp_path / 'b'), 1, [], 256, queue_bytes=4096)  # 32 records
    try:
        _core.set_mule_sender(a)
        assert _core.mule_msg(b'to a', 1) is True
        assert a.pending() == 1 and b.pending() == 0
        _core.set_mule_sender(b, 0.05)
        sent = 0
        with pytest.raises(Exception, match='stayed full for 0.05 s') as info:
            for _ in range(100):
                _core.mule_msg(b'x' * 100, 1)
                sent += 1
        assert type(info.value).__name__ == 'MuleQueueFullError'
        assert sent > 0 and b.pending() == sent and a.pending() == 1
        # Forgotten (configure(), reset()): the next send asks the mules module, which finds the
        # master from the environment.
        monkeypatch.setenv('UWSGIDECORATORS_CONTROL', str(tmp_path / 'a'))
        from _uwsgidecorators_runtime import config

        config.reset()
        mules.reset()
        import uwsgi

        assert uwsgi.mule_msg(b'found again') is True
        assert a.pending() == 2
    finally:
        monkeypatch.undo()
        from _uwsgidecorators_runtime import config

        config.reset()
        mules.reset()
