"""The RPC names of the ``uwsgi`` shim and ``@rpc``: uWSGI's signatures (as typeshed's
types-uwsgi stubs write them), limits, types and results, in one process."""

from __future__ import annotations

import inspect
import logging

import pytest

import uwsgi
import uwsgidecorators
from _uwsgidecorators_runtime import rpc as _rpc


@pytest.fixture(autouse=True)
def clean_table():
    saved = dict(_rpc.FUNCS)
    _rpc.FUNCS.clear()
    yield
    _rpc.FUNCS.clear()
    _rpc.FUNCS.update(saved)


def params(f):
    return [(p.name, p.kind.name, p.default is not inspect.Parameter.empty) for p in inspect.signature(f).parameters.values()]


def test_signatures_are_typesheds():
    # types-uwsgi: register_rpc(name, func, /, arg_count=...), rpc(node, rpc_name, /, *rpc_args),
    # call(rpc_name, /, *args), rpc_list()
    assert params(uwsgi.register_rpc) == [
        ('name', 'POSITIONAL_ONLY', False),
        ('func', 'POSITIONAL_ONLY', False),
        ('arg_count', 'POSITIONAL_OR_KEYWORD', True),
    ]
    assert params(uwsgi.rpc) == [
        ('node', 'POSITIONAL_ONLY', False),
        ('rpc_name', 'POSITIONAL_ONLY', False),
        ('rpc_args', 'VAR_POSITIONAL', False),
    ]
    assert params(uwsgi.call) == [('rpc_name', 'POSITIONAL_ONLY', False), ('args', 'VAR_POSITIONAL', False)]
    assert params(uwsgi.rpc_list) == []
    assert params(uwsgidecorators.rpc) == [('name', 'POSITIONAL_OR_KEYWORD', False)]


def test_register_and_call_locally():
    assert uwsgi.register_rpc('hello', lambda *a: b'hello:' + b','.join(a)) is True
    assert uwsgi.register_rpc('noargs', lambda: b'x', 0) is True
    assert uwsgi.rpc_list() == (b'hello', b'noargs')
    assert uwsgi.call(b'hello', b'a', b'b') == b'hello:a,b'
    assert uwsgi.rpc(None, b'hello') == b'hello:'
    assert uwsgi.rpc('', b'hello', b'z') == b'hello:z'
    assert uwsgi.rpc(b'', b'noargs') == b'x'
    binary = bytes(range(256))
    assert uwsgi.call(b'hello', binary) == b'hello:' + binary
    # re-registering replaces, keeps the place
    uwsgi.register_rpc('hello', lambda *a: b'new')
    assert uwsgi.call(b'hello') == b'new'
    assert uwsgi.rpc_list() == (b'hello', b'noargs')


def test_decorator_registers_and_returns_the_function():
    @uwsgidecorators.rpc('deco')
    def deco(*args: bytes) -> bytes:
        return b'd' + b''.join(args)

    assert deco(b'1') == b'd1'
    assert uwsgi.call(b'deco', b'2') == b'd2'
    assert b'deco' in uwsgi.rpc_list()


def test_results_as_uwsgi_hands_them_on(caplog):
    uwsgi.register_rpc('empty', lambda: b'')
    uwsgi.register_rpc('text', lambda: 'str')
    uwsgi.register_rpc('none', lambda: None)
    uwsgi.register_rpc('ba', lambda: bytearray(b'x'))
    uwsgi.register_rpc('boom', lambda: 1 / 0)

    class B(bytes):
        pass

    uwsgi.register_rpc('sub', lambda: B(b'sub'))
    for name in (b'empty', b'text', b'none', b'ba'):
        assert uwsgi.call(name) is None
        assert uwsgi.rpc(None, name) is None
    with caplog.at_level(logging.ERROR, logger='uwsgidecorators.rpc'):
        assert uwsgi.call(b'boom') is None
        assert uwsgi.rpc(None, b'boom') is None
    assert 'ZeroDivisionError' in caplog.text
    got = uwsgi.call(b'sub')
    assert got == b'sub' and type(got) is bytes


def test_names_and_arguments_must_be_bytes():
    uwsgi.register_rpc('f', lambda *a: b'ok')
    for bad in [('f',), (b'f', 'x'), (b'f', bytearray(b'x')), (b'f', 1)]:
        with pytest.raises(ValueError, match='unable to call rpc function'):
            uwsgi.call(*bad)
        with pytest.raises(ValueError, match='unable to call rpc function'):
            uwsgi.rpc(None, *bad)
    with pytest.raises(ValueError, match='the limit is 255'):
        uwsgi.call(b'f', *([b'a'] * 256))
    assert uwsgi.call(b'f', *([b'a'] * 255)) == b'ok'


def test_registration_limits(monkeypatch):
    ok = 'n' * 255
    assert uwsgi.register_rpc(ok, lambda: b'1') is True
    assert uwsgi.call(ok.encode()) == b'1'
    with pytest.raises(ValueError, match='unable to register rpc function'):
        uwsgi.register_rpc('n' * 256, lambda: b'1')
    with pytest.raises(ValueError, match='unable to register rpc function'):
        uwsgi.register_rpc('é' * 128, lambda: b'1')  # 256 bytes in UTF-8
    with pytest.raises(ValueError, match='unable to register rpc function'):
        uwsgi.register_rpc('', lambda: b'1')
    with pytest.raises(TypeError):
        uwsgi.register_rpc(b'bytes', lambda: b'1')  # type: ignore[call-overload]
    with pytest.raises(TypeError, match='not callable'):
        uwsgi.register_rpc('x', 'not a function')  # type: ignore[call-overload]
    for i in range(63):
        uwsgi.register_rpc(f'f{i}', lambda: b'1')
    assert len(uwsgi.rpc_list()) == 64
    with pytest.raises(ValueError, match='the limit is 64'):
        uwsgi.register_rpc('one-too-many', lambda: b'1')
    uwsgi.register_rpc('f0', lambda: b'replaced')  # replacing is not one more
    assert uwsgi.call(b'f0') == b'replaced'


def test_unknown_local_name_in_a_master_child_is_none(monkeypatch):
    # Inside the master's tree (role set) an unknown name is None, as in uWSGI; no socket is tried.
    from _uwsgidecorators_runtime import config as _config

    monkeypatch.setattr(_config.state(), 'role', 'worker')
    assert uwsgi.call(b'nope') is None
    assert uwsgi.rpc(None, b'nope') is None


def test_remote_without_a_server_is_none_and_logged(caplog):
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger='uwsgidecorators.rpc'):
        assert uwsgi.rpc(f'127.0.0.1:{port}', b'f') is None
    assert 'refused' in caplog.text.lower()


def test_a_remote_call_is_interruptible():
    """A call to a server that never answers ends at Ctrl-C (KeyboardInterrupt), not at its
    timeout: the wait releases the GIL and runs Python's signal handlers."""
    import signal
    import socket
    import threading

    from _uwsgidecorators_runtime import _core

    with socket.socket() as silent:
        silent.bind(('127.0.0.1', 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        timer = threading.Timer(0.3, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):  # a timeout would be TimeoutError
            _core.rpc_call(f'127.0.0.1:{port}', b'f', [], 30.0)
        timer.join()
