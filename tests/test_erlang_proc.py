"""Issue 13, @erlang: our master's Erlang node (--erlang) against a real Erlang node (`erl` from
Debian's erlang-base), on loopback, with its own EPMD on a free port (ERL_EPMD_PORT), all stopped
by pid. Messages go both ways: erl -> our @erlang function -> its reply back to erl, and our
function -> a process registered on the erl node; a node with the wrong cookie is refused."""

from __future__ import annotations

import re
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

from tests.interop.procs import wait_until

pytestmark = pytest.mark.skipif(shutil.which('erl') is None, reason='erl not installed (apt-get install erlang-base)')

COOKIE = 'h11-test-cookie'

TASKS = '''
import uwsgi
from uwsgidecorators import erlang


@erlang('echo')
def echo(message):
    return ('echoed', message)


@erlang('fwd')
def fwd(message):
    # {forward, Name, Node}: our side sends to a process registered on the Erlang node
    _, name, node = message
    uwsgi.erlang_send_message(node, name, ('from_python', name, b'bin', [1.5, None]))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def _erl(procs, tmp_path: Path, name: str, cookie: str, script: str, env: dict[str, str]):
    out = tmp_path / f'{name}.out'
    body = textwrap.dedent(script).replace('OUT', f'"{out}"').strip()
    argv = [
        shutil.which('erl'), '-sname', f'{name}@localhost', '-setcookie', cookie, '-noshell', '-noinput',
        '-kernel', 'inet_dist_use_interface', '{127,0,0,1}', '-eval', body,
    ]
    return procs.start(argv, name=f'erl-{name}', env=env), out


@pytest.fixture
def cluster(procs, tmp_path):
    port = _free_port()
    env = {'ERL_EPMD_PORT': str(port), 'HOME': str(tmp_path), 'PATH': '/usr/bin:/bin'}
    # Our own EPMD, in the foreground, so the fixture stops it by pid (erl would start a daemon).
    epmd = procs.start([shutil.which('epmd'), '-port', str(port), '-address', '127.0.0.1'], name='epmd', env=env)
    wait_until(lambda: _listening(port), 10, 'epmd', [epmd])
    (tmp_path / 'tasks.py').write_text(TASKS)
    master = procs.master(
        ['--erlang', 'ours@localhost', '--erlang-cookie', COOKIE, '--import', 'tasks', '--processes', '1'],
        cwd=tmp_path,
        env={'ERL_EPMD_PORT': str(port)},
    )
    wait_until(lambda: 'Erlang C-Node ours@localhost registered on port' in master.log(), 30, 'our node', [master])
    return env, master


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(('127.0.0.1', port)) == 0


def _result(out: Path, proc) -> str:
    wait_until(lambda: out.exists() and out.read_text().endswith('done.\n'), 60, f'{out.name}', [])
    proc.wait(10)
    return re.sub(r'\s+', '', out.read_text())


def test_erl_node_talks_to_our_node_both_ways(procs, tmp_path, cluster):
    env, master = cluster
    script = """
        register(collector, self()),
        {echo, 'ours@localhost'} ! {hello, "str", <<"bin">>, 42, -7, 12345678901234567890, 1.5, [a, b], #{k => v}},
        R1 = receive X -> X after 15000 -> timeout end,
        Hidden = lists:member('ours@localhost', nodes(hidden)),
        {fwd, 'ours@localhost'} ! {forward, collector, node()},
        R2 = receive Y -> Y after 15000 -> timeout end,
        file:write_file(OUT, io_lib:format("~p.~n~p.~n~p.~ndone.~n", [R1, Hidden, R2])),
        halt().
    """
    erl, out = _erl(procs, tmp_path, 'test', COOKIE, script, env)
    got = _result(out, erl)
    # erl -> echo, and the function's return value back to the sender
    assert got.startswith(
        '{echoed,{hello,<<"str">>,<<"bin">>,42,-7,12345678901234567890,1.5,[a,b],#{k=>v}}}.'
    ), got + master.tail()
    assert 'true.' in got  # the handshake made us one of erl's (hidden) nodes
    # our function -> {collector, 'test@localhost'}
    assert got.endswith('{from_python,collector,<<"bin">>,[1.5,[]]}.done.'), got + master.tail()
    assert 'node test@localhost connected' in master.log()


def test_wrong_cookie_is_refused(procs, tmp_path, cluster):
    env, master = cluster
    script = """
        P = net_adm:ping('ours@localhost'),
        {echo, 'ours@localhost'} ! hello,
        R = receive X -> X after 3000 -> timeout end,
        file:write_file(OUT, io_lib:format("~p.~n~p.~ndone.~n", [P, R])),
        halt().
    """
    erl, out = _erl(procs, tmp_path, 'intruder', 'not-the-cookie', script, env)
    assert _result(out, erl) == 'pang.timeout.done.'
    wait_until(lambda: 'refused a connection from intruder@localhost' in master.log(), 10, 'the refusal', [master])
    assert 'node intruder@localhost connected' not in master.log()
