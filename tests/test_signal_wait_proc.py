"""uwsgi.signal_wait / uwsgi.signal_received under our master, as real processes (issue 10.4).

uWSGI's semantics (core/signal.c uwsgi_signal_wait, the Python plugin's py_uwsgi_signal_wait):
the waiting code reads the process's signal channels itself, runs the handler of every signal it
reads, and returns b'' when the awaited one (any, without an argument) came; signal_received()
answers that number afterwards, 0 before any wait.
"""

from __future__ import annotations

import signal
import time

from interop import sigapp
from interop.procs import wait_until

_events = sigapp.events
_start = sigapp.start


def _raise(procs, m, *nums):
    """A process the master did not fork raises signals through the control socket."""
    code = 'import sys, uwsgi\nfor n in sys.argv[1:]:\n    uwsgi.signal(int(n))\n'
    p = procs.python(
        ['-c', code, *[str(n) for n in nums]],
        name='attached',
        env={'UWSGIDECORATORS_CONTROL': sigapp.control(m)},
    )
    assert p.wait(20) == 0, p.log()


def test_a_postfork_function_of_a_worker_waits_for_a_signal(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(40, target='worker1')
        def forty(num):
            rec('handler', num=num)

        @signal(41, target='worker1')
        def forty_one(num):
            rec('handler', num=num)

        @postfork
        def wait_in_worker_one():
            if uwsgi.worker_id() != 1:
                return
            rec('ready', received=uwsgi.signal_received())
            r = uwsgi.signal_wait(41)  # 40 comes first: its handler runs and the wait goes on
            rec('waited', ret=repr(r), received=uwsgi.signal_received())
            uwsgi.signal_wait()  # any
            rec('waited_any', received=uwsgi.signal_received())
        """,
        workers=1,
    )
    ready = wait_until(lambda: _events(out, 'ready'), 20, 'the wait', [m])
    assert ready[0]['received'] == 0  # before any wait, as in uWSGI (a fresh request's 0)
    _raise(procs, m, 40)
    wait_until(lambda: _events(out, 'handler'), 20, 'handler 40', [m])
    time.sleep(0.3)
    assert _events(out, 'waited') == []  # 40 is not the one it waits for
    _raise(procs, m, 41)
    waited = wait_until(lambda: _events(out, 'waited'), 20, 'the end of the wait for 41', [m])
    assert waited[0]['ret'] == "b''" and waited[0]['received'] == 41
    assert [e['num'] for e in _events(out, 'handler')] == [40, 41]
    _raise(procs, m, 40)
    waited_any = wait_until(lambda: _events(out, 'waited_any'), 20, 'the wait for any', [m])
    assert waited_any[0]['received'] == 40
    # then the worker's own loop runs the handlers, as before
    _raise(procs, m, 41)
    wait_until(lambda: len(_events(out, 'handler')) == 4, 20, 'the loop running 41', [m])
    assert all(e['worker'] == 1 for e in _events(out, 'handler'))
    assert m.stop(signal.SIGTERM) == 0


def test_a_thread_of_a_worker_waits_while_the_worker_loop_runs(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        import threading

        @signal(42, target='worker1')
        def forty_two(num):
            rec('handler', num=num)

        def waiter():
            rec('ready')
            uwsgi.signal_wait(42)
            rec('waited', received=uwsgi.signal_received())

        @postfork
        def start_waiter():
            if uwsgi.worker_id() == 1:
                threading.Thread(target=waiter, daemon=True).start()
        """,
        workers=1,
    )
    wait_until(lambda: _events(out, 'ready'), 20, 'the waiting thread', [m])
    time.sleep(0.2)
    # Whoever reads 42 (the thread or the worker loop) runs the handler once and ends the wait.
    _raise(procs, m, 42)
    waited = wait_until(lambda: _events(out, 'waited'), 20, 'the end of the wait', [m])
    assert waited[0]['received'] == 42
    time.sleep(0.2)
    assert [e['num'] for e in _events(out, 'handler')] == [42]
    assert m.stop(signal.SIGTERM) == 0


def test_a_spooler_waits_for_a_signal_then_runs_tasks(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(43, target='spooler')
        def in_spooler(num):
            rec('handler', num=num)

        @spool
        def task(args):
            rec('task')

        @signal(45, target='worker1')
        def enqueue(num):
            task.spool({'a': 'b'})

        @postfork
        def wait_in_spooler():
            if not uwsgi.i_am_the_spooler():
                return
            rec('ready')
            uwsgi.signal_wait(43)
            rec('waited', received=uwsgi.signal_received())
        """,
        workers=1,
        spooler=True,
    )
    ready = wait_until(lambda: _events(out, 'ready'), 20, 'the spooler waiting', [m])
    assert ready[0]['spooler'] is True
    _raise(procs, m, 43)
    waited = wait_until(lambda: _events(out, 'waited'), 20, 'the end of the wait', [m])
    assert waited[0]['received'] == 43 and waited[0]['spooler'] is True
    assert [(e['num'], e['spooler']) for e in _events(out, 'handler')] == [(43, True)]
    # then the spooler runs its loop: tasks and signals
    _raise(procs, m, 45)
    wait_until(lambda: _events(out, 'task'), 20, 'the task', [m])
    _raise(procs, m, 43)
    wait_until(lambda: len(_events(out, 'handler')) == 2, 20, 'the spooler loop running 43', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_a_stop_request_ends_a_wait(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @postfork
        def wait_for_ever():
            if uwsgi.worker_id() != 1:
                return
            rec('ready')
            try:
                uwsgi.signal_wait(44)
            except SystemError as exc:
                rec('stopped', why=str(exc))
                raise
        """,
        workers=1,
    )
    wait_until(lambda: _events(out, 'ready'), 20, 'the wait', [m])
    time.sleep(0.2)
    assert m.stop(signal.SIGTERM) == 0
    assert 'stopping' in _events(out, 'stopped')[0]['why']
