"""RPC against real uWSGI 2.0.21 (Debian, ``--plugin python3,rpc``), both ways, and the golden
wire vectors: our client calls functions registered in real uWSGI, real uWSGI's ``uwsgi.rpc``
calls functions registered in our master, and a raw client sees our server answer byte for byte
as uWSGI answered it."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import uwsgi
from tests.interop.procs import wait_until

HERE = Path(__file__).resolve().parent
INTEROP = HERE / 'interop'
GOLDEN_RPC = HERE / 'golden' / 'rpc'

BINARY = bytes(range(256)) + b'\x00\x00\xff'
LARGEST = b'\x00\xfe' * (65527 // 2) + b'\x01'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def connectable(port: int) -> bool:
    try:
        socket.create_connection(('127.0.0.1', port), 0.2).close()
        return True
    except OSError:
        return False


def start_uwsgi_server(procs, port: int, *extra: str):
    srv = procs.uwsgi(
        ['--plugin', 'rpc', '--processes', '1', '--socket', f'127.0.0.1:{port}', '--pythonpath', INTEROP]
        + ['--import', 'rpcfuncs', *extra],
        name='uwsgi-server',
    )
    wait_until(lambda: connectable(port) and 'spawned uWSGI worker 1' in srv.log(), 30, 'uWSGI rpc server', [srv])
    return srv


def start_our_master(procs, spool_dir: Path, port: int, *extra: str):
    m = procs.master(
        ['--spooler', spool_dir, '--plugin', 'rpc', '--processes', '2', '--socket', f'127.0.0.1:{port}', '--pythonpath', INTEROP]
        + ['--import', 'rpcfuncs', *extra]
    )
    wait_until(lambda: connectable(port) and 'spawned uWSGI worker 2' in m.log(), 30, 'our master', [m])
    return m


def test_our_client_calls_real_uwsgi(procs, uwsgi_bin):
    port = free_port()
    srv = start_uwsgi_server(procs, port, '--buffer-size', '65535')
    node = f'127.0.0.1:{port}'
    assert uwsgi.rpc(node, b'hello', b'a', b'bc') == b'hello:a,bc'
    assert uwsgi.rpc(node.encode(), b'hello') == b'hello:'
    assert uwsgi.rpc(node, b'count', b'x', b'y', b'z') == b'3'
    assert uwsgi.rpc(node, b'echo', BINARY) == BINARY
    assert uwsgi.rpc(node, b'echo', BINARY[:100], BINARY[100:]) == BINARY
    assert uwsgi.rpc(node, b'echo', LARGEST) == LARGEST  # the largest request: a 65535-byte array
    assert uwsgi.rpc(node, b'big') == b'B' * 70000  # over 64 KiB: the CONTENT_LENGTH reply
    for nothing in (b'empty', b'strret', b'boom', b'nope'):
        assert uwsgi.rpc(node, nothing) is None
    assert uwsgi.call(b'hello@' + node.encode(), b'at') == b'hello:at'
    with pytest.raises(ValueError, match='unable to call rpc function'):
        uwsgi.rpc(node, b'echo', LARGEST + b'x')  # 65536 bytes: refused, as uWSGI's client does
    assert srv.alive()


def test_real_uwsgi_default_buffer_size_refuses_big_requests(procs, uwsgi_bin):
    # uWSGI reads a request into --buffer-size (4096 by default): a bigger one gets no answer.
    # Ours takes every request the protocol can carry (see docs/compat.md).
    port = free_port()
    start_uwsgi_server(procs, port)
    node = f'127.0.0.1:{port}'
    assert uwsgi.rpc(node, b'echo', b'x' * 4000) == b'x' * 4000
    assert uwsgi.rpc(node, b'echo', b'x' * 5000) is None


def test_real_uwsgi_calls_our_master(procs, uwsgi_bin, spool_dir, tmp_path):
    port = free_port()
    m = start_our_master(procs, spool_dir, port)
    out = tmp_path / 'rpc_out.json'
    cli = procs.uwsgi(
        ['--plugin', 'rpc', '--processes', '1', '--socket', f'127.0.0.1:{free_port()}', '--pythonpath', INTEROP]
        + ['--import', 'rpcclient'],
        name='uwsgi-client',
        env={'RPC_NODE': f'127.0.0.1:{port}', 'RPC_OUT': str(out)},
    )
    wait_until(out.exists, 60, 'the uWSGI client results', [cli, m])
    got = {k: None if v is None else base64.b64decode(v) for k, v in json.loads(out.read_text()).items()}
    assert got == {
        'two_args': b'hello:a,bc',
        'no_args': b'hello:',
        'count_three': b'3',
        'binary': BINARY,
        'binary_split': BINARY,
        'largest_request': LARGEST,
        'big_reply': b'B' * 70000,
        'empty': None,
        'strret': None,
        'raises': None,
        'unknown': None,
    }
    assert 'RuntimeError: boom' in m.log()  # a raising function is logged with its traceback
    assert m.alive()


def test_golden_probe_against_our_server(procs, spool_dir, tmp_path, golden_dir):
    """uWSGI's own probe client (tests/golden/rpc) against our master with the same functions:
    every case's reply bytes as real uWSGI answered them."""
    port = free_port()
    start_our_master(procs, spool_dir, port)
    work = tmp_path / 'probe'
    work.mkdir()
    subprocess.run(
        [sys.executable, str(GOLDEN_RPC / 'rpc_probe_client.py'), str(port)],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=120,
    )
    ours = {c['case']: c for c in json.loads((work / 'rpc_results.json').read_text())}
    golden = json.loads((GOLDEN_RPC / 'rpc_vectors.json').read_text())['cases']
    assert len(golden) == 8
    for case in golden:
        mine = ours[case['case']]
        for key in ('request_hex', 'response_len', 'response_header', 'response_head_hex'):
            assert mine[key] == case[key], (case['case'], key)


def test_golden_requests_reencode():
    """Every golden request decodes (name, args) and our client encodes those to the same bytes."""
    golden = json.loads((GOLDEN_RPC / 'rpc_vectors.json').read_text())['cases']
    for case in golden:
        raw = bytes.fromhex(case['request_hex'])
        m1, size, m2 = struct.unpack('<BHB', raw[:4])
        assert (m1, size) == (173, len(raw) - 4)
        items, pos = [], 4
        while pos < len(raw):
            (n,) = struct.unpack('<H', raw[pos : pos + 2])
            items.append(raw[pos + 2 : pos + 2 + n])
            pos += 2 + n
        # the server drops empty items; a request with one cannot come from uWSGI's Python API
        sent = [i for i in items if i]
        if len(sent) != len(items) or m2 != 0:
            continue
        with socket.socket() as lst:
            lst.bind(('127.0.0.1', 0))
            lst.listen(1)
            port = lst.getsockname()[1]
            import threading

            box: list[bytes] = []

            def grab() -> None:
                c, _ = lst.accept()
                data = b''
                while len(data) < len(raw):
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                box.append(data)
                c.close()

            t = threading.Thread(target=grab)
            t.start()
            assert uwsgi.rpc(f'127.0.0.1:{port}', sent[0], *sent[1:]) is None
            t.join(10)
        assert box == [raw], case['case']


def test_unix_socket_option(procs, spool_dir, tmp_path):
    path = tmp_path / 'rpc.sock'
    m = procs.master(
        ['--spooler', spool_dir, '--plugins', 'python3,rpc', '--processes', '1', '--socket', path, '--pythonpath', INTEROP, '--import', 'rpcfuncs']
    )
    wait_until(lambda: path.exists() and 'spawned uWSGI worker 1' in m.log(), 30, 'unix socket', [m])
    assert uwsgi.rpc(str(path), b'hello', b'u') == b'hello:u'
    m.stop()
    assert not path.exists()  # removed at exit


def test_web_request_on_the_socket_is_closed_and_logged(procs, spool_dir):
    port = free_port()
    m = start_our_master(procs, spool_dir, port)
    # what nginx's uwsgi_pass sends: modifier1 0 with CGI vars
    vars_ = b''.join(struct.pack('<H', len(x)) + x for x in (b'REQUEST_METHOD', b'GET', b'PATH_INFO', b'/'))
    with socket.create_connection(('127.0.0.1', port), 5) as c:
        c.sendall(struct.pack('<BHB', 0, len(vars_), 0) + vars_)
        try:
            assert c.recv(100) == b''
        except ConnectionResetError:
            pass
    wait_until(lambda: 'not rpc (last modifier1 0' in m.log(), 10, 'the log line', [m])
    assert uwsgi.rpc(f'127.0.0.1:{port}', b'hello') == b'hello:'


def test_attached_process_calls_the_master(procs, spool_dir, tmp_path):
    """A process the master did not fork (a gunicorn worker) calls a function registered in the
    master: uwsgi.call finds it through the control socket's place, and a worker runs it."""
    port = free_port()
    m = start_our_master(procs, spool_dir, port)
    code = (
        'import uwsgi, uwsgidecorators, os\n'
        f'uwsgidecorators.configure(spooler={str(spool_dir)!r})\n'
        "pid = uwsgi.call(b'whoami')\n"
        "print('RESULT', uwsgi.call(b'hello', b'x'), uwsgi.rpc(None, b'count', b'1', b'2'), "
        "pid != str(os.getpid()).encode(), uwsgi.call(b'nope'))\n"
    )
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert "RESULT b'hello:x' b'2' True None" in r.stdout, r.stderr
    assert m.alive()
    # with no master known: a clear error, not a hang
    code = (
        'import uwsgi\n'
        'from uwsgidecorators.exceptions import MasterNotFoundError\n'
        'try:\n'
        "    uwsgi.call(b'hello')\n"
        'except MasterNotFoundError as e:\n'
        "    print('MNF', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith('UWSGIDECORATORS_')}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, env=env)
    assert 'MNF unable to call rpc function' in r.stdout, r.stderr


def test_socket_is_served_only_with_the_rpc_plugin(procs, spool_dir, tmp_path):
    """An ini written for uWSGI whose `socket` is for nginx (no rpc plugin, as Debian's uWSGI
    would not serve RPC there either) binds nothing and says so; `plugins = python3,rpc` binds."""
    port = free_port()
    m = procs.master(['--spooler', spool_dir, '--processes', '1', '--socket', f'127.0.0.1:{port}'])
    wait_until(lambda: 'spawned uWSGI worker 1' in m.log(), 30, 'our master', [m])
    assert not connectable(port)
    assert 'option --socket is not served' in m.log() and 'add --plugin rpc' in m.log()
    m.stop()
    ini = tmp_path / 'app.ini'
    ini.write_text(
        f'[uwsgi]\nplugins = python3,rpc,router_cache\nsocket = 127.0.0.1:{port}\nspooler = {spool_dir}\n'
        f'processes = 1\npythonpath = {INTEROP}\nimport = rpcfuncs\n'
    )
    m = procs.master(['--ini', ini], name='ours-ini')
    wait_until(lambda: connectable(port) and 'spawned uWSGI worker 1' in m.log(), 30, 'our master', [m])
    assert uwsgi.rpc(f'127.0.0.1:{port}', b'hello') == b'hello:'
    assert 'plugin router_cache is not loaded' in m.log()
    assert 'option --socket is not served' not in m.log()


def test_calls_during_a_reload_wait_instead_of_being_refused(procs, spool_dir):
    """A graceful reload (SIGHUP) hands the RPC listeners to the re-executed master, as uWSGI
    keeps its sockets: a call made while no worker runs waits in the backlog and is answered by
    the new worker."""
    import signal as _signal

    port = free_port()
    m = start_our_master(procs, spool_dir, port)
    node = f'127.0.0.1:{port}'
    assert uwsgi.rpc(node, b'hello', b'1') == b'hello:1'
    m.send(_signal.SIGHUP)
    wait_until(lambda: 'binary reloading' in m.log(), 30, 'the re-exec', [m])
    assert uwsgi.rpc(node, b'hello', b'2') == b'hello:2'
    wait_until(lambda: m.log().count('spawned uWSGI worker 2') >= 2, 30, 'the new workers', [m])
    assert uwsgi.rpc(node, b'hello', b'3') == b'hello:3'
    assert 'Address already in use' not in m.log()
