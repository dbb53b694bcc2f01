"""Issue 13: the seed's examples (uWSGI's decorators page, as quoted in each test below) run inside REAL uWSGI
(Debian's 2.0.21, python3 plugin) with OUR `uwsgidecorators` on the python path, delegating to the
builtin `uwsgi` module: one test per decorator, all against one uWSGI instance (1 worker, a
spooler, 3 mules, mule 3 in farm `f1`) started once for this module.

Covered elsewhere, not repeated: @timer, @rbtimer, @signal, @cron, @filemon, and @rpc/@lock being
applied (tests/test_signals_real_uwsgi.py); the spool file formats both ways
(tests/test_interop_decorators.py).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from interop import procs as P
from interop.procs import read_jsonl, wait_until

import uwsgidecorators

INSIDE = textwrap.dedent(
    """
    import json, os, time
    import uwsgi
    import uwsgidecorators
    from uwsgidecorators import (spool, spoolforever, spoolraw, postfork, thread, lock, mulefunc,
                                 mulemsg, muleloop, farm, rpc, harakiri)

    OUT = os.environ['REAL_OUT']
    FLAG = os.environ['REAL_FLAG']

    def rec(event, **kw):
        kw.update(event=event, pid=os.getpid(), worker=uwsgi.worker_id(), mule=uwsgi.mule_id())
        with open(OUT, 'a') as f:
            f.write(json.dumps(kw) + '\\n')

    @spool
    def a_long_task(args):
        rec('spool', args={k: v for k, v in args.items() if k == 'foo'})

    @spool(pass_arguments=True)
    def a_task_with_arguments(a, b=2):
        rec('spool_args', a=a, b=b)

    @spoolforever
    def a_longer_task(args):
        rec('spoolforever')

    @spoolraw
    def a_controlled_task(args):
        rec('spoolraw')
        return uwsgi.SPOOL_OK

    @rpc('helloworld')
    def ciao_mondo_function():
        return b'Hello World'

    @lock
    def dangerous_op():
        return 'Concurrency is for fools!'

    @thread
    def a_running_thread(x):
        rec('thread', x=x)

    @mulefunc
    def i_am_an_offloaded_function(argument1, argument2):
        rec('mulefunc', args=[argument1, argument2])

    @mulefunc(1)  # the docs' @mulefunc(3); mule 1 here, whose @mulemsg loop dispatches it
    def on_one():
        rec('mulefunc_one')

    @mulemsg(1)
    def mule_one_message(message):
        if message != b'hello mule':  # a plain @mulefunc call may land here (uWSGI's shared mule queue)
            return uwsgidecorators.mule_msg_dispatcher(message)
        rec('mulemsg', message=message.decode())

    @muleloop(2)
    def mule_two_loop():
        if not os.path.exists(FLAG + '.loop'):
            open(FLAG + '.loop', 'w').close()
            rec('muleloop')
        time.sleep(0.1)

    @farm('f1')
    def farm_message(message):
        rec('farm', message=message.decode())

    @harakiri(1)
    def slow_function():
        rec('harakiri_armed')
        time.sleep(4)
        rec('harakiri_survived')

    try:
        @uwsgidecorators.erlang('foobar')
        def hello():
            return 'Hello'
        erlang = 'no error'
    except Exception as exc:
        erlang = type(exc).__name__

    @postfork
    def started():
        rec('postfork', erlang=erlang, real=uwsgidecorators._REAL_UWSGI)
        if uwsgi.worker_id() != 1 or os.path.exists(FLAG):
            return
        open(FLAG, 'w').close()
        a_long_task.spool(foo='bar')
        a_task_with_arguments.spool(1, b=3)
        a_longer_task.spool({'x': '1'})
        a_controlled_task.spool({'foo': 'bar'})
        rec('lock', result=dangerous_op())
        a_running_thread(7)
        i_am_an_offloaded_function(1, 'two')
        on_one()
        uwsgi.mule_msg(b'hello mule', 1)
        uwsgi.farm_msg('f1', b'hello farm')
        rec('rpc', result=uwsgi.call(b'helloworld').decode())
        slow_function()
    """
)


@pytest.fixture(scope='module')
def real(tmp_path_factory: pytest.TempPathFactory):
    tmp = Path(os.path.realpath(tmp_path_factory.mktemp('real')))
    (tmp / 'spool').mkdir(mode=0o700)
    module = tmp / 'seed_inside.py'
    module.write_text(INSIDE)
    out = tmp / 'out.jsonl'
    group = P.ProcGroup(tmp / 'logs')
    try:
        u = group.uwsgi(
            [
                '--pythonpath', str(Path(uwsgidecorators.__file__).resolve().parent.parent),
                '--socket', tmp / 'sock',
                '--processes', '1',
                '--enable-threads',
                '--spooler', tmp / 'spool',
                '--spooler-frequency', '1',
                '--mule', '--mule', '--mule',
                '--farm', 'f1:3',
                '--import', module,
            ],
            env={'REAL_OUT': out, 'REAL_FLAG': tmp / 'flag'},
        )
        wait_until(lambda: [r for r in read_jsonl(out) if r['event'] == 'postfork'], 20, 'the module', [u])
        yield u, out
    finally:
        group.close()


def _event(real, name: str, timeout: float = 15) -> dict:
    u, out = real
    return wait_until(lambda: [r for r in read_jsonl(out) if r['event'] == name], timeout, name, [u])[0]


def test_postfork_runs_in_every_child_and_the_builtin_module_is_used(real):
    _event(real, 'lock')  # worker 1 got there
    recs = [r for r in read_jsonl(real[1]) if r['event'] == 'postfork']
    assert all(r['real'] is True for r in recs)
    assert {r['worker'] for r in recs if r['worker']} == {1}


def test_erlang_raises_as_in_real_uwsgi_2_0(real):
    assert _event(real, 'postfork')['erlang'] == 'AttributeError'


def test_spool(real):
    assert _event(real, 'spool')['args'] == {'foo': 'bar'}


def test_spool_pass_arguments(real):
    r = _event(real, 'spool_args')
    assert (r['a'], r['b']) == (1, 3)


def test_spoolforever(real):
    assert _event(real, 'spoolforever')['worker'] == 0


def test_spoolraw(real):
    assert _event(real, 'spoolraw')['worker'] == 0


def test_lock(real):
    assert _event(real, 'lock')['result'] == 'Concurrency is for fools!'


def test_thread(real):
    assert _event(real, 'thread')['x'] == 7


def test_mulefunc(real):
    r = _event(real, 'mulefunc')
    assert r['args'] == [1, 'two'] and r['mule'] >= 1
    assert _event(real, 'mulefunc_one')['mule'] == 1


def test_mulemsg(real):
    r = _event(real, 'mulemsg')
    assert (r['message'], r['mule']) == ('hello mule', 1)


def test_muleloop(real):
    assert _event(real, 'muleloop')['mule'] == 2


def test_farm(real):
    r = _event(real, 'farm')
    assert (r['message'], r['mule']) == ('hello farm', 3)


def test_rpc(real):
    assert _event(real, 'rpc')['result'] == 'Hello World'


def test_harakiri(real):
    _event(real, 'harakiri_armed')
    u = real[0]
    wait_until(lambda: 'HARAKIRI' in u.log(), 15, 'the harakiri kill', [u])
    assert not [r for r in read_jsonl(real[1]) if r['event'] == 'harakiri_survived']
