"""uwsgi.signal / register_signal under our master, as real processes.

Handlers append one JSON line per run to $SIG_OUT. Processes that the master did not fork reach it
through the control socket it names in UWSGIDECORATORS_CONTROL (the master logs the path).
Every wait is bounded; every process is stopped by pid at teardown (the `procs` fixture).
"""

from __future__ import annotations

import os
import signal
import time

from interop import sigapp
from interop.procs import pid_alive, read_jsonl, wait_until

_events = sigapp.events
_start = sigapp.start
_control = sigapp.control
_workers_up = sigapp.workers_up


def _attached_raise(procs, m, *nums, expect_ok=True):
    """A process the master did not fork raises signals through the control socket."""
    code = 'import sys, uwsgi\nfor n in sys.argv[1:]:\n    uwsgi.signal(int(n))\nprint("raised")\n'
    p = procs.python(
        ['-c', code, *[str(n) for n in nums]], name='attached', env={'UWSGIDECORATORS_CONTROL': _control(m)}
    )
    assert p.wait(20) == (0 if expect_ok else 1), p.log()
    return p


def test_signal_raised_in_one_worker_reaches_another(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(100, target='worker2')
        def in_two(num):
            rec('in_two', num=num)

        @timer(0.3, target='worker1')
        def relay(num):
            rec('relay')
            uwsgi.signal(100)
        """,
    )
    wait_until(lambda: len(_events(out, 'in_two')) >= 2, 20, 'signal 100 in worker 2', [m])
    assert {r['worker'] for r in _events(out, 'relay')} == {1}
    assert {(r['worker'], r['num']) for r in _events(out, 'in_two')} == {(2, 100)}
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


def test_worker_raised_signals_follow_the_masters_table_and_its_log(procs, tmp_path):
    """A signal aimed at one worker goes straight to it; the table still decides (a run-time
    registration in another worker moves it), and a missing worker is still in the master's log."""
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(100, target='worker2')
        def in_two(num):
            rec('in_two', num=num)

        @signal(102, target='worker2')
        def moved(num):
            rec('moved', num=num)

        @signal(103, target='worker9')
        def nowhere(num):
            rec('nine')

        @postfork
        def move_102():
            if uwsgi.worker_id() == 2:
                uwsgi.register_signal(102, 'workers', lambda num: rec('moved', num=num))
                rec('registered')

        @timer(0.2, target='worker1')
        def relay(num):
            if os.path.exists(MARK) and not os.path.exists(MARK + '.done'):
                open(MARK + '.done', 'w').close()
                for n in (100, 102, 103):
                    uwsgi.signal(n)
        """,
    )
    wait_until(lambda: _events(out, 'registered'), 20, 'the run-time registration', [m])
    open(str(out) + '.mark', 'w').close()
    wait_until(lambda: _events(out, 'in_two') and len(_events(out, 'moved')) >= 2, 20, 'the handlers', [m])
    wait_until(lambda: 'signal 103 not delivered: worker 9 does not exist' in m.log(), 20, 'the log line', [m])
    time.sleep(0.3)
    assert [(r['worker'], r['num']) for r in _events(out, 'in_two')] == [(2, 100)]
    # routed by worker 2's registration ('workers'): both workers run it (worker 1 with the
    # handler it inherited from the master), not only the table's first target
    assert sorted((r['worker'], r['num']) for r in _events(out, 'moved')) == [(1, 102), (2, 102)]
    assert _events(out, 'nine') == []
    assert m.stop(signal.SIGTERM) == 0


def test_attached_process_raises_a_signal(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(33)
        def any_worker(num):
            rec('any', num=num)

        @signal(34, target='workers')
        def all_workers(num):
            rec('all', num=num)
        """,
        workers=3,
    )
    _workers_up(m, 3)
    _attached_raise(procs, m, 33, 34)
    wait_until(lambda: _events(out, 'any') and len(_events(out, 'all')) == 3, 20, 'the handlers', [m])
    time.sleep(0.3)
    assert [r['num'] for r in _events(out, 'any')] == [33]  # one worker, once
    assert sorted(r['worker'] for r in _events(out, 'all')) == [1, 2, 3]
    assert m.stop(signal.SIGTERM) == 0


def test_signal_without_a_master_is_a_clear_error(procs, tmp_path):
    code = (
        'import uwsgi\n'
        'from uwsgidecorators.exceptions import MasterNotFoundError\n'
        'try:\n'
        '    uwsgi.signal(1)\n'
        'except MasterNotFoundError as exc:\n'
        '    print("refused:", exc)\n'
    )
    env = {'UWSGIDECORATORS_CONTROL': ''}
    p = procs.python(['-c', code], env=env)
    assert p.wait(20) == 0
    assert 'refused: unable to send the signal: this process knows no uwsgidecorators master' in p.log()
    p = procs.python(['-c', code], env={'UWSGIDECORATORS_CONTROL': str(tmp_path / 'gone')}, name='gone')
    assert p.wait(20) == 0
    assert 'the master is not listening on' in p.log()


def test_unregistered_and_unrouted_signals_are_logged(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(5, target='mule')
        def in_a_mule(num):
            rec('mule')

        @signal(6, target='worker9')
        def in_worker_nine(num):
            rec('nine')

        @signal(9, target='subscribed')
        def placeholder(num):
            rec('subscribed')
        """,
        workers=1,
    )
    _workers_up(m, 1)
    _attached_raise(procs, m, 77, 5, 6, 9)
    wait_until(
        lambda: (
            'unregistered signal 77' in m.log()
            and 'signal 5 not delivered: no mule is running' in m.log()
            and 'signal 6 not delivered: worker 9 does not exist' in m.log()
        ),
        20,
        'the log lines',
        [m],
    )
    assert read_jsonl(out) == []
    assert m.stop(signal.SIGTERM) == 0


def test_worker_registers_at_run_time_and_only_it_runs_the_handler(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @postfork
        def register_in_two():
            if uwsgi.worker_id() == 2:
                uwsgi.register_signal(120, 'worker2', lambda num: rec('rt', num=num))
                # a worker may overwrite its own registration (the master may not)
                uwsgi.register_signal(121, '', lambda num: rec('first', num=num))
                uwsgi.register_signal(121, 'worker2', lambda num: rec('second', num=num))
                rec('registered', seen=uwsgi.signal_registered(120), other=uwsgi.signal_registered(122))
        """,
    )
    wait_until(lambda: _events(out, 'registered'), 20, 'the run-time registration', [m])
    assert _events(out, 'registered')[0]['seen'] is True and _events(out, 'registered')[0]['other'] is None
    _attached_raise(procs, m, 120, 121)
    wait_until(lambda: _events(out, 'rt') and _events(out, 'second'), 20, 'the handlers', [m])
    assert [(r['worker'], r['num']) for r in _events(out, 'rt')] == [(2, 120)]
    assert _events(out, 'first') == []
    assert m.stop(signal.SIGTERM) == 0


def test_master_refuses_reregistration_and_bad_targets_at_import(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(3)
        def first(num):
            pass

        for args in ((3, ''), (4, 'nowhere'), (4, 'w' * 64)):
            try:
                uwsgi.register_signal(args[0], args[1], first)
            except ValueError as exc:
                rec('refused', why=str(exc))
        """,
        workers=0,
    )
    wait_until(lambda: len(_events(out, 'refused')) == 3, 20, 'the refusals', [m])
    why = [r['why'] for r in _events(out, 'refused')]
    assert why[0].startswith('unable to register signal') and 'already registered' in why[0]
    assert 'unsupported signal target' in why[1] and 'longer than 63 bytes' in why[2]
    assert m.stop(signal.SIGTERM) == 0


def test_bad_target_in_a_decorator_stops_the_master(procs, tmp_path):
    m, _ = _start(
        procs,
        tmp_path,
        """
        @signal(3, target='everybody')
        def oops(num):
            pass
        """,
    )
    assert m.wait(20) == 1
    assert 'import failed' in m.log() and 'unsupported signal target "everybody"' in m.log()


def test_handler_exception_is_logged_and_the_worker_goes_on(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @timer(0.2)
        def flaky(num):
            rec('flaky')
            raise RuntimeError('boom in a handler')
        """,
        workers=1,
    )
    wait_until(lambda: len(_events(out, 'flaky')) >= 3, 20, 'three runs', [m])
    assert len({r['pid'] for r in _events(out, 'flaky')}) == 1  # the same worker, never respawned
    assert 'handler of signal 0 raised' in m.log() and 'RuntimeError: boom in a handler' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_harakiri_kills_a_stuck_signal_handler(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(50)
        def stuck_once(num):
            first = not os.path.exists(MARK)
            rec('start', first=first)
            if first:
                open(MARK, 'w').close()
                time.sleep(60)
            rec('done')

        @timer(0.5)
        def raise_it(num):
            uwsgi.signal(50)
        """,
        '--harakiri',
        '1',
        workers=1,
    )
    wait_until(lambda: _events(out, 'done'), 25, 'harakiri, respawn, then a run that finishes', [m])
    starts = _events(out, 'start')
    assert starts[0]['first'] is True and not pid_alive(starts[0]['pid'])
    assert 'HARAKIRI ON WORKER 1' in m.log() and 'signal handler (--harakiri)' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_spooler_may_not_register_but_raises_and_runs_signals(procs, tmp_path):
    imported = sigapp.write_module(
        tmp_path,
        """
            try:
                uwsgi.register_signal(60, 'spooler', lambda n: None)
            except ValueError as exc:
                rec('refused', why=str(exc))
            uwsgi.add_rb_timer(63, 0.1, 3)  # as in uWSGI, a spooler may add timers
            rec('timer_added')
            """,
        'inspooler',
    )
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(61, target='spooler')
        def in_spooler(num):
            rec('in_spooler', num=num)
            uwsgi.signal(62)

        @signal(62, target='worker1')
        def back_in_worker(num):
            rec('back', num=num)

        @signal(63, target='spooler')
        def spooler_timer(num):
            rec('spooler_timer', num=num)
        """,
        '--spooler-import',
        imported,
        workers=1,
        spooler=True,
    )
    wait_until(lambda: _events(out, 'refused') and _events(out, 'timer_added'), 20, 'the refusal', [m])
    assert 'only the master and the workers can register' in _events(out, 'refused')[0]['why']
    wait_until(lambda: len(_events(out, 'spooler_timer')) == 3, 20, "the spooler's timer", [m])
    assert all(r['spooler'] for r in _events(out, 'spooler_timer'))
    _workers_up(m, 1)
    _attached_raise(procs, m, 61)
    wait_until(lambda: _events(out, 'back'), 20, 'spooler -> worker', [m])
    assert _events(out, 'in_spooler')[0]['spooler'] is True
    assert _events(out, 'back')[0]['worker'] == 1
    assert m.stop(signal.SIGTERM) == 0


def test_children_get_the_control_socket_and_it_is_removed_at_exit(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @postfork
        def where():
            rec('env', control=os.environ.get('UWSGIDECORATORS_CONTROL'))
        """,
        workers=1,
    )
    control = _control(m)
    wait_until(lambda: _events(out, 'env'), 20, 'the worker', [m])
    assert _events(out, 'env')[0]['control'] == control
    assert os.path.exists(control)
    assert m.stop(signal.SIGTERM) == 0
    assert not os.path.exists(control) and not os.path.exists(os.path.dirname(control))


def test_the_master_logs_a_control_datagram_it_refuses(procs, tmp_path):
    # A child checks what it can before sending; what the master still refuses (a path gone in
    # between, a datagram from an older client) is in its log, with the reason.
    m, _out = _start(procs, tmp_path, '', workers=1)
    control = _control(m)
    _workers_up(m, 1)
    code = (
        'import sys\n'
        'from uwsgidecorators import _signals\n'
        '_signals._send(b"f\\x05\\x00/does/not/exist", sys.argv[1])\n'
        '_signals._send(b"t\\x05", sys.argv[1])\n'
    )
    p = procs.python(['-c', code, control], name='sender')
    assert p.wait(20) == 0, p.log()
    wait_until(lambda: m.log().count('control datagram refused') >= 2, 20, 'the refusals in the log', [m])
    refused = [line for line in m.log().splitlines() if 'control datagram refused' in line]
    assert '/does/not/exist' in refused[0] and 'unknown control datagram' in refused[1], refused
    assert m.stop(signal.SIGTERM) == 0
