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
