"""Cron under our master, as real processes, on the test clock (nobody sleeps a minute).

The master runs with UWSGIDECORATORS_TEST_CLOCK=1 and TZ=UTC; the test moves the wall clock cron
sees by sending `T<offset>` datagrams to its control socket (``_signals.set_test_clock_offset``).
Every wait is bounded; every process is stopped by pid at teardown (the `procs` fixture).
"""

from __future__ import annotations

import signal
import time

from interop import sigapp
from interop.procs import wait_until
from uwsgidecorators import _signals

DAY = 86_400
_events = sigapp.events


def _start(procs, tmp_path, body, *, workers=2, test_clock=True):
    env = {'TZ': 'UTC'}
    if test_clock:
        env['UWSGIDECORATORS_TEST_CLOCK'] = '1'
    m, out = sigapp.start(procs, tmp_path, body, workers=workers, env=env, name='crontasks')
    control = sigapp.control(m)
    sigapp.workers_up(m, workers)
    return m, out, control


def _move_to(control: str, when: int) -> None:
    """Make the master's cron clock read `when` (unix seconds, UTC) now."""
    _signals.set_test_clock_offset(when - int(time.time()), control=control)


def _tomorrow() -> int:
    now = int(time.time())
    return now - now % DAY + DAY


def test_uwsgi_integers_fire_once_at_the_matching_minute(procs, tmp_path):
    # The cron entry of the seed's Django task.py.
    m, out, control = _start(
        procs,
        tmp_path,
        """
        @cron(40, 2, -1, -1, -1)
        def nightly(num):
            rec('nightly', num=num)
        """,
    )
    day = _tomorrow()
    _move_to(control, day + 2 * 3600 + 39 * 60 + 30)  # 02:39:30: not yet
    time.sleep(0.5)
    assert _events(out, 'nightly') == []
    _move_to(control, day + 2 * 3600 + 40 * 60 + 5)  # 02:40:05
    wait_until(lambda: _events(out, 'nightly'), 20, 'the 02:40 entry', [m])
    time.sleep(1.5)  # the loop looks at the clock at least once a second: still once this minute
    _move_to(control, day + 2 * 3600 + 41 * 60 + 5)  # 02:41: no match
    time.sleep(1.0)
    runs = _events(out, 'nightly')
    assert len(runs) == 1 and runs[0]['worker'] in (1, 2)
    # the next day at 02:40 it fires again
    _move_to(control, day + DAY + 2 * 3600 + 40 * 60 + 1)
    wait_until(lambda: len(_events(out, 'nightly')) == 2, 20, 'the next night', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_crontab_strings_time_zones_and_targets(procs, tmp_path):
    m, out, control = _start(
        procs,
        tmp_path,
        """
        @cron('*/5 * * * *', target='workers')
        def every_five(num):
            rec('five')

        @cron('0 12 * * *', tz='Asia/Tokyo')   # 03:00 UTC (Tokyo has no DST)
        def tokyo_noon(num):
            rec('tokyo')

        @cron('@daily')
        def midnight(num):
            rec('daily')

        assert uwsgi.add_cron(200, 0, 0, 1, 1, -1) is True  # uWSGI's return value
        """,
    )
    day = _tomorrow()
    _move_to(control, day + 2 * 3600 + 41 * 60 + 2)  # 02:41: nothing matches
    time.sleep(0.5)
    _move_to(control, day + 2 * 3600 + 45 * 60 + 2)  # 02:45: */5, in every worker
    wait_until(lambda: len(_events(out, 'five')) == 2, 20, '*/5 in both workers', [m])
    assert sorted(r['worker'] for r in _events(out, 'five')) == [1, 2]
    _move_to(control, day + 3 * 3600 + 2)  # 03:00 UTC = 12:00 in Tokyo (and */5 again)
    wait_until(lambda: _events(out, 'tokyo') and len(_events(out, 'five')) == 4, 20, 'Tokyo noon', [m])
    assert _events(out, 'daily') == []
    _move_to(control, day + DAY + 2)  # midnight UTC
    wait_until(lambda: _events(out, 'daily'), 20, '@daily', [m])
    assert len(_events(out, 'tokyo')) == 1
    assert m.stop(signal.SIGTERM) == 0


def test_a_minute_already_under_way_at_registration_does_not_fire(procs, tmp_path):
    # uWSGI would fire at once, at whatever second it is; we wait for the next matching minute.
    now = time.gmtime()
    m, out, _control = _start(
        procs,
        tmp_path,
        f"""
        # before the entries: an entry added at hh:mm:59.99 fires at the next minute's start,
        # which a record taken after it could already be in
        rec('registered', minute=time.gmtime().tm_min)

        @cron({now.tm_min}, {now.tm_hour}, -1, -1, -1)
        def this_minute(num):
            rec('now')

        @cron(-1, -1, -1, -1, -1)
        def every_minute(num):
            rec('every', minute=time.gmtime().tm_min)
        """,
        workers=1,
        test_clock=False,
    )
    time.sleep(1.5)
    assert _events(out, 'now') == []
    # the every-minute entry fires at the start of the next minute, never during this one
    registered = _events(out, 'registered')[0]['minute']
    assert all(r['minute'] != registered for r in _events(out, 'every'))
    assert m.stop(signal.SIGTERM) == 0


def test_bad_cron_entries_are_refused_at_import(procs, tmp_path):
    m, out, _control = _start(
        procs,
        tmp_path,
        """
        for args, kwargs in (
            (('61 * * * *',), {}),
            (('* * * *',), {}),
            ((0, 0, -1, -1, -1), {'tz': 'Mars/Olympus_Mons'}),
        ):
            try:
                uwsgi.add_cron(90, *args, **kwargs)
            except ValueError as exc:
                rec('refused', why=str(exc))
        try:
            cron(1.5, 2, -1, -1, -1)(lambda num: None)  # uWSGI's integers are integers
        except TypeError as exc:
            rec('type', why=str(exc))
        """,
        workers=1,
    )
    wait_until(lambda: len(_events(out, 'refused')) == 3 and _events(out, 'type'), 20, 'the refusals', [m])
    why = [r['why'] for r in _events(out, 'refused')]
    assert all(w.startswith('unable to add cron') for w in why)
    assert 'minute' in why[0] and 'Mars/Olympus_Mons' in why[2]
    assert m.stop(signal.SIGTERM) == 0


def test_catch_up_runs_a_missed_minute_once_late(procs, tmp_path):
    m, out, control = _start(
        procs,
        tmp_path,
        """
        @cron(30, 4, -1, -1, -1, catch_up=True)
        def late_is_fine(num):
            rec('caught')

        @cron(30, 4, -1, -1, -1)
        def skip_if_missed(num):
            rec('skipped')
        """,
    )
    day = _tomorrow()
    _move_to(control, day + 4 * 3600 + 30 * 60 + 1)
    wait_until(lambda: _events(out, 'caught') and _events(out, 'skipped'), 20, 'the on-time run', [m])
    # the master "sleeps" through the next 04:30 and wakes at 04:32
    _move_to(control, day + DAY + 4 * 3600 + 32 * 60)
    wait_until(lambda: len(_events(out, 'caught')) == 2, 20, 'the late run', [m])
    time.sleep(1.5)  # the loop looks at the clock at least once a second: the late run is once
    assert len(_events(out, 'caught')) == 2
    assert len(_events(out, 'skipped')) == 1
    assert m.stop(signal.SIGTERM) == 0


def test_cron_entries_added_by_a_worker_fire(procs, tmp_path):
    # uwsgi.add_cron in a worker: uWSGI's integers (with a time zone) and a crontab string go to
    # the master as control datagrams; bad entries are refused in the worker, at once.
    m, out, control = _start(
        procs,
        tmp_path,
        """
        from uwsgidecorators import postfork

        @signal(70)
        def tokyo(num):
            rec('tokyo', num=num)

        @signal(71, target='workers')
        def every_ten(num):
            rec('ten', num=num)

        @postfork
        def add_crons():
            if uwsgi.worker_id() != 1:
                return
            refused = []
            for args, kwargs in ((('61 * * * *',), {}), ((0, 0, -1, -1, -1), {'tz': 'Mars/Olympus_Mons'})):
                try:
                    uwsgi.add_cron(72, *args, **kwargs)
                except ValueError as exc:
                    refused.append(str(exc))
            assert uwsgi.add_cron(70, 15, 12, -1, -1, -1, tz='Asia/Tokyo') is True  # 03:15 UTC
            assert uwsgi.add_cron(71, '*/10 * * * *') is True
            rec('added', refused=refused)
        """,
    )
    wait_until(lambda: _events(out, 'added'), 20, 'worker 1 to add its cron entries', [m])
    refused = _events(out, 'added')[0]['refused']
    assert len(refused) == 2 and all(w.startswith('unable to add cron') for w in refused), refused
    day = _tomorrow()
    _move_to(control, day + 3 * 3600 + 5 * 60 + 2)  # 03:05 UTC: nothing matches
    time.sleep(0.5)
    assert _events(out, 'tokyo') == [] and _events(out, 'ten') == []
    _move_to(control, day + 3 * 3600 + 10 * 60 + 2)  # 03:10: */10, in both workers
    wait_until(lambda: len(_events(out, 'ten')) == 2, 20, '*/10 in both workers', [m])
    assert sorted(r['worker'] for r in _events(out, 'ten')) == [1, 2]
    _move_to(control, day + 3 * 3600 + 15 * 60 + 2)  # 03:15 UTC = 12:15 in Tokyo
    wait_until(lambda: _events(out, 'tokyo'), 20, 'the Tokyo entry', [m])
    assert len(_events(out, 'tokyo')) == 1 and len(_events(out, 'ten')) == 2
    assert 'control datagram refused' not in m.log()
    assert m.stop(signal.SIGTERM) == 0
