"""Our decorators inside REAL uWSGI: they must delegate to the builtin module, never pass it our
extra keywords, translate crontab strings to its integers, and refuse what it cannot do."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import uwsgidecorators
from interop.procs import read_jsonl, wait_until

INSIDE = textwrap.dedent(
    """
    import json, os, warnings
    import uwsgi
    import uwsgidecorators
    from uwsgidecorators import cron, filemon, rbtimer, signal, timer

    OUT = os.environ['SIG_OUT']
    WATCHED = os.environ['WATCHED']

    def rec(event, **kw):
        kw.update(event=event, pid=os.getpid(), worker=uwsgi.worker_id())
        with open(OUT, 'a') as f:
            f.write(json.dumps(kw) + '\\n')

    @timer(1)
    def every_second(num):
        rec('timer', num=num)

    @signal(30, target='workers')
    def relayed(num):
        rec('relayed', num=num)

    @rbtimer(1, signum=31)
    def relay(num):
        uwsgi.signal(30)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')

        @cron('*/5 * * * *', catch_up=True)  # the builtin gets (-5, -1, -1, -1, -1) and nothing else
        def every_five(num):
            rec('cron')

        @filemon(WATCHED, recursive=True)  # the builtin gets the path alone
        def changed(num):
            rec('filemon')

    # not built outside real uWSGI (NotBuiltError there); here the builtin module does the work
    @uwsgidecorators.rpc('hello')
    def hello():
        return b'hi'

    @uwsgidecorators.lock
    def locked():
        return 'locked'

    @uwsgidecorators.mule(1)
    def in_mule_one():  # no mule runs here: never called, and no error
        rec('mule')

    refused = []
    for make in (lambda: cron(0, 0, -1, -1, -1, tz='UTC'), lambda: cron('0 0 * * 1-5')):
        try:
            make()
        except ValueError as exc:
            refused.append(str(exc))
    rec('loaded', shim=getattr(uwsgi, '__uwsgidecorators_shim__', False), real=uwsgidecorators._REAL_UWSGI,
        warnings=[str(w.message) for w in caught], refused=refused,
        registered=[bool(uwsgi.signal_registered(n)) for n in (0, 1, 2, 30, 31)],
        rpc=[n.decode() for n in uwsgi.rpc_list()], lock=type(locked).__name__, mule=in_mule_one)
    """
)


def _our_pythonpath() -> str:
    return str(Path(uwsgidecorators.__file__).resolve().parent.parent)


def test_decorators_delegate_to_the_builtin_module(procs, tmp_path, uwsgi_bin):
    out = tmp_path / 'out.jsonl'
    watched = tmp_path / 'watched'
    watched.mkdir()
    module = tmp_path / 'inside.py'
    module.write_text(INSIDE)
    u = procs.uwsgi(
        [
            '--pythonpath',
            _our_pythonpath(),
            '--socket',
            tmp_path / 'sock',
            '--processes',
            '2',
            '--import',
            module,
        ],
        env={'SIG_OUT': out, 'WATCHED': watched},
    )
    loaded = wait_until(lambda: [r for r in read_jsonl(out) if r['event'] == 'loaded'], 20, 'the module', [u])[0]
    assert loaded['shim'] is False and loaded['real'] is True
    assert loaded['registered'] == [True] * 5
    assert loaded['rpc'] == ['hello'] and loaded['lock'] == 'lock' and loaded['mule'] is None
    assert any('catch_up' in w for w in loaded['warnings']) and any('recursive' in w for w in loaded['warnings'])
    assert 'needs the uwsgidecorators master' in loaded['refused'][0]
    assert "cannot be expressed with real uWSGI's add_cron" in loaded['refused'][1]
    wait_until(
        lambda: [r for r in read_jsonl(out) if r['event'] == 'timer'],
        20,
        "real uWSGI's timer running our handler",
        [u],
    )
    os.close(os.open(watched / 'new', os.O_CREAT | os.O_WRONLY, 0o644))
    wait_until(lambda: [r for r in read_jsonl(out) if r['event'] == 'filemon'], 20, 'the file monitor', [u])
    wait_until(
        lambda: {r['worker'] for r in read_jsonl(out) if r['event'] == 'relayed'} == {1, 2},
        20,
        'uwsgi.signal from a worker to every worker',
        [u],
    )
    log = u.log()
    assert 'signum 0 registered' in log and 'unable to' not in log
