"""Bad input at the master's RPC socket: random bytes, truncated and oversized packets, slow and
silent clients. The master and its workers stay up (no respawn), nothing hangs, and the next valid
call is answered."""

from __future__ import annotations

import random
import socket
import struct
import time

import uwsgi
from tests.interop.procs import wait_until
from tests.test_rpc_interop import INTEROP, connectable, free_port

N_INPUTS = 100_000
BURST = 100  # connections open at once


def request(name: bytes, *args: bytes, mod2: int = 0) -> bytes:
    body = b''.join(struct.pack('<H', len(i)) + i for i in (name, *args))
    return struct.pack('<BHB', 173, len(body), mod2) + body


def inputs(rng: random.Random):
    """Random bytes; valid requests cut anywhere; headers lying about the size; other modifiers;
    arrays with overrunning items; empty packets; too many items."""
    valid = [request(b'hello', b'a', b'bc'), request(b'echo', bytes(range(256))), request(b'count')]
    while True:
        kind = rng.randrange(8)
        if kind == 0:
            yield rng.randbytes(rng.randrange(1, 64))
        elif kind == 1:
            v = rng.choice(valid)
            yield v[: rng.randrange(1, len(v))]
        elif kind == 2:
            yield struct.pack('<BHB', 173, rng.randrange(65536), rng.randrange(256)) + rng.randbytes(rng.randrange(32))
        elif kind == 3:
            yield struct.pack('<BHB', rng.randrange(256), rng.randrange(64), 0) + rng.randbytes(rng.randrange(64))
        elif kind == 4:
            body = struct.pack('<H', rng.randrange(2, 65535)) + rng.randbytes(rng.randrange(8))
            yield struct.pack('<BHB', 173, len(body), 0) + body
        elif kind == 5:
            yield struct.pack('<BHB', 173, 0, 0)
        elif kind == 6:
            body = b'\x01\x00a' * 300  # 300 items
            yield struct.pack('<BHB', 173, len(body), 0) + body
        else:
            v = bytearray(rng.choice(valid))
            v[rng.randrange(len(v))] = rng.randrange(256)
            yield bytes(v)


def test_random_and_truncated_packets(procs, spool_dir):
    port = free_port()
    m = procs.master(
        ['--spooler', spool_dir, '--plugin', 'rpc', '--processes', '2', '--socket', f'127.0.0.1:{port}', '--pythonpath', INTEROP]
        + ['--import', 'rpcfuncs', '--socket-timeout', '1', '--listen', '1024']
    )
    wait_until(lambda: connectable(port) and 'spawned uWSGI worker 2' in m.log(), 30, 'our master', [m])
    node = f'127.0.0.1:{port}'
    workers = sorted(m.children())
    rng = random.Random(20261206)
    gen = inputs(rng)
    sent = 0
    t0 = time.monotonic()
    while sent < N_INPUTS:
        socks = []
        for _ in range(BURST):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # no TIME_WAIT
            c.connect(('127.0.0.1', port))
            try:
                c.sendall(next(gen))
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may have closed already
            socks.append(c)
        for c in socks:
            c.settimeout(10)
            try:
                while c.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            c.close()
        sent += BURST
        if sent % 10_000 == 0:
            assert uwsgi.rpc(node, b'hello', b'ok') == b'hello:ok', sent
    elapsed = time.monotonic() - t0
    assert uwsgi.rpc(node, b'hello', b'after') == b'hello:after'
    assert m.alive()
    assert sorted(m.children()) == workers  # no worker died or was respawned
    assert 'respawn' not in m.log().lower()
    assert 'connections closed without a reply' in m.log()
    print(f'{sent} inputs in {elapsed:.1f} s')


def test_slow_and_silent_clients(procs, spool_dir):
    port = free_port()
    m = procs.master(
        ['--spooler', spool_dir, '--plugin', 'rpc', '--processes', '1', '--socket', f'127.0.0.1:{port}', '--pythonpath', INTEROP]
        + ['--import', 'rpcfuncs', '--socket-timeout', '1', '--rpc-max-connections', '8']
    )
    wait_until(lambda: connectable(port) and 'spawned uWSGI worker 1' in m.log(), 30, 'our master', [m])
    node = f'127.0.0.1:{port}'
    silent = [socket.create_connection(('127.0.0.1', port)) for _ in range(5)]
    half = socket.create_connection(('127.0.0.1', port))
    half.sendall(request(b'hello', b'x')[:5])
    dribble = socket.create_connection(('127.0.0.1', port))
    # One worker, 7 connections that never complete a request: calls are still answered.
    for i in range(20):
        assert uwsgi.rpc(node, b'hello', str(i).encode()) == f'hello:{i}'.encode()
    # A client that sends one byte at a time slower than the timeout is cut off.
    closed = False
    for b in request(b'hello', b'slow'):
        try:
            dribble.sendall(bytes([b]))
        except OSError:
            closed = True
            break
        time.sleep(0.3)
    dribble.settimeout(5)
    try:
        assert closed or dribble.recv(100) == b''
    except ConnectionResetError:
        pass
    # The silent ones are closed by the read timeout (1 s).
    for c in [*silent, half]:
        c.settimeout(5)
        try:
            assert c.recv(100) == b''
        except ConnectionResetError:
            pass
        c.close()
    # More silent clients than the worker's connection limit: the rest wait in the backlog and
    # are served as slots free up; a valid call still gets its answer.
    many = [socket.create_connection(('127.0.0.1', port)) for _ in range(20)]
    assert uwsgi.rpc(node, b'hello', b'end') == b'hello:end'
    for c in many:
        c.close()
    wait_until(lambda: 'too slow' in m.log(), 15, 'the timeout log line', [m])
    assert m.alive()
