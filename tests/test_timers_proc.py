"""Timers under our master, as real processes: @timer, @rbtimer, add_timer, --timer, targets.

Handlers append one JSON line per run to $SIG_OUT (pid, worker id, spooler flag, monotonic time).
Every wait is bounded; every process is stopped by pid at teardown (the `procs` fixture).
"""

from __future__ import annotations

import signal
import time

from interop import sigapp
from interop.procs import wait_until

_events = sigapp.events
_start = sigapp.start


def test_fractional_timer_fires_repeatedly_one_worker_per_tick(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @timer(0.2)
        def tick(num):
            rec('tick', num=num)
        """,
    )
    wait_until(lambda: len(_events(out, 'tick')) >= 10, 20, 'ten ticks', [m])
    ticks = _events(out, 'tick')[:10]
    assert {t['num'] for t in ticks} == {0}  # get_free_signal() picked 0
    assert {t['worker'] for t in ticks} <= {1, 2} and not any(t['spooler'] for t in ticks)
    # A timer never fires early: ten ticks of 0.2 s span at least ~1.8 s (the first may be late).
    assert ticks[-1]['t'] - ticks[0]['t'] >= 1.5
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


def test_rb_timer_with_iterations_fires_exactly_that_many_times_in_one_worker_each(procs, tmp_path):
    # Each tick of a "first available worker" signal runs in exactly one worker: five raises
    # (add_rb_timer's iterations) are five handler runs among three workers, never more.
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(40)
        def five(num):
            rec('five', num=num)
            time.sleep(0.05)

        uwsgi.add_rb_timer(40, 0.1, 5)
        """,
        workers=3,
    )
    wait_until(lambda: len(_events(out, 'five')) >= 5, 20, 'five runs', [m])
    time.sleep(1.0)  # ten more periods: nothing else may come
    runs = _events(out, 'five')
    assert len(runs) == 5, runs
    assert {r['worker'] for r in runs} <= {1, 2, 3}
    assert m.stop(signal.SIGTERM) == 0


def test_workers_target_runs_in_every_worker(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @timer(0.25, target='workers')
        def everyone(num):
            rec('all')
        """,
        workers=3,
    )

    def each_twice():
        seen = [r['worker'] for r in _events(out, 'all')]
        return all(seen.count(w) >= 2 for w in (1, 2, 3))

    wait_until(each_twice, 20, 'every worker twice', [m])
    assert {r['worker'] for r in _events(out, 'all')} == {1, 2, 3}
    assert m.stop(signal.SIGTERM) == 0


def test_spooler_target_runs_in_the_spooler(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @timer(0.3, target='spooler')
        def in_spooler(num):
            rec('spooler')
        """,
        workers=1,
        spooler=True,
    )
    wait_until(lambda: len(_events(out, 'spooler')) >= 3, 20, 'three runs in the spooler', [m])
    runs = _events(out, 'spooler')
    assert all(r['spooler'] and r['worker'] == 0 for r in runs)
    spooler_pid = int(m.log().split('with pid ')[1].split()[0])
    assert {r['pid'] for r in runs} == {spooler_pid}
    assert m.stop(signal.SIGTERM) == 0


def test_spooler_runs_signals_and_tasks(procs, tmp_path):
    # A spooler busy with tasks still runs its signals between them, and the other way round.
    m, out = _start(
        procs,
        tmp_path,
        """
        @spool(pass_arguments=True)
        def job(i):
            rec('job', i=i)
            time.sleep(0.1)

        @timer(0.2, target='spooler')
        def beat(num):
            rec('beat')

        @postfork
        def enqueue():
            if uwsgi.worker_id() == 1:
                for i in range(10):
                    job(i)
        """,
        workers=1,
        spooler=True,
    )
    wait_until(lambda: len(_events(out, 'job')) == 10 and len(_events(out, 'beat')) >= 5, 20, 'jobs and beats', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_timer_option_raises_a_signal_registered_by_a_module(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(7)
        def seven(num):
            rec('seven', num=num)

        @signal(8, target='workers')
        def eight(num):
            rec('eight', num=num)
        """,
        '--timer',
        '7 0.2',
        '--rbtimer',
        '8 0.3',
    )
    wait_until(lambda: len(_events(out, 'seven')) >= 3 and len(_events(out, 'eight')) >= 4, 20, '--timer', [m])
    assert {r['num'] for r in _events(out, 'seven')} == {7}
    assert '--timer: signal 7 every 0.2 s' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_timer_whose_target_has_no_process_is_logged(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @timer(0.1, target='spooler')
        def nobody(num):
            rec('never')

        @timer(0.1, target='mule')
        def no_mule(num):
            rec('never')
        """,
        workers=1,
    )
    wait_until(
        lambda: (
            'signal 0 not delivered: no spooler is running' in m.log()
            and 'signal 1 not delivered: no mule is running' in m.log()
        ),
        20,
        'the unrouted signals in the log',
        [m],
    )
    # Repeats are counted, not logged ten times a second.
    time.sleep(0.5)
    assert m.log().count('signal 0 not delivered') == 1
    assert _events(out, 'never') == []
    assert m.stop(signal.SIGTERM) == 0


def test_zero_and_negative_periods_are_refused(procs, tmp_path):
    # Issue 10: @timer(0) used to be accepted in the master and never fire.
    m, out = _start(
        procs,
        tmp_path,
        """
        for make in (lambda: timer(0), lambda: rbtimer(0), lambda: uwsgi.add_timer(3, -1), lambda: uwsgi.add_timer(3, 0)):
            try:
                make()
            except ValueError as exc:
                rec('refused', why=str(exc))

        @timer(0.1)
        def soon(num):
            rec('soon')
        """,
        workers=1,
    )
    wait_until(lambda: len(_events(out, 'soon')) >= 5, 20, 'the other timer', [m])
    refused = [e['why'] for e in _events(out, 'refused')]
    assert len(refused) == 4 and all('unable to add' in why for why in refused), refused
    assert m.stop(signal.SIGTERM) == 0


def test_a_worker_adds_timers_at_run_time(procs, tmp_path):
    # uwsgi.add_timer / add_rb_timer in a worker: checked there, then sent to the master, which
    # runs them as its own.
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(50)
        def from_worker(num):
            rec('tick', num=num)

        @signal(51, target='workers')
        def rb_from_worker(num):
            rec('rb', num=num)

        @postfork
        def add_them():
            if uwsgi.worker_id() != 1:
                return
            refused = []
            for call in (lambda: uwsgi.add_timer(52, -1), lambda: uwsgi.add_rb_timer(52, 1, -1)):
                try:
                    call()
                except ValueError as exc:
                    refused.append(str(exc))
            uwsgi.add_timer(50, 0.2)
            uwsgi.add_rb_timer(51, 0.1, 3)
            rec('added', refused=refused)
        """,
        workers=2,
    )
    wait_until(
        lambda: len(_events(out, 'tick')) >= 5 and len(_events(out, 'rb')) >= 6, 20, 'the timers of worker 1', [m]
    )
    added = _events(out, 'added')
    assert len(added) == 1 and added[0]['worker'] == 1
    assert [w.split(':')[0] for w in added[0]['refused']] == ['unable to add timer', 'unable to add rb_timer']
    assert all(t['t'] > added[0]['t'] for t in _events(out, 'tick'))
    assert {t['num'] for t in _events(out, 'tick')} == {50}
    time.sleep(0.5)  # five more periods of the rb-timer: nothing else may come
    rb = _events(out, 'rb')
    assert len(rb) == 6 and sorted(r['worker'] for r in rb) == [1, 1, 1, 2, 2, 2], rb
    assert 'control datagram refused' not in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_timer_option_of_zero_seconds_is_a_usage_error():
    # Issue 10: the master's core now refuses a 0 period; the option says so before it starts.
    import pytest
    from uwsgidecorators.master import UsageError, _timer_option

    assert _timer_option('timer', '7 0.2') == (7, 0.2)
    for bad in ('7 0', '7 -1', '256 1', '-1 1'):
        with pytest.raises(UsageError, match='SIGNUM SECONDS'):
            _timer_option('timer', bad)
