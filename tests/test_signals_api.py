"""The signal API in a process without a master (a test, a gunicorn worker, a shell): argument
checks, the per-process table, the way to a master's control socket, remote signals, and the
decorators' forms. Processes with a master: test_signals_proc.py and friends."""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
import warnings

import pytest
import uwsgi
import uwsgidecorators
from uwsgidecorators import _config, _core, _signals
from uwsgidecorators.exceptions import FileMonitorPathError, MasterNotFoundError, NoMasterWarning

try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.delenv(_config.ENV_CONTROL, raising=False)
    monkeypatch.delenv(_config.ENV_MASTER_PID, raising=False)
    _config.reset()
    _signals.reset()
    yield
    _signals.reset()
    _config.reset()


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# numbers and targets


def test_signal_numbers_must_be_integers_from_0_to_255():
    assert _signals.signum(0) == 0 and _signals.signum(255) == 255 and _signals.signum(True) == 1
    for bad in (1.0, '3', None):
        with pytest.raises(TypeError):
            _signals.signum(bad)
    _quiet(uwsgi.register_signal, 255, '', lambda n: None)
    assert uwsgi.signal_registered(255) is True
    assert uwsgi.signal_registered(45) is None  # None, not False, as in uWSGI


@pytest.mark.parametrize('num', [256, 300, -1, -256, 2**40])
def test_signal_numbers_out_of_range_are_refused_everywhere(num, tmp_path):
    """Issue 10: @signal(300) registered signal 44 and @signal(-1) signal 255 (uWSGI's "B"
    format takes any int modulo 256); every call that takes a signal number refuses them."""
    named = rf'signal number {num} is out of range: uWSGI signals are 0 to 255'

    def f(n):
        pass

    calls = {
        'unable to register signal': lambda: uwsgi.register_signal(num, '', f),
        'unable to raise signal': lambda: uwsgi.signal(num),
        'unable to add timer': lambda: uwsgi.add_timer(num, 1),
        'unable to add rb_timer': lambda: uwsgi.add_rb_timer(num, 1),
        'unable to add cron': lambda: uwsgi.add_cron(num, -1, -1, -1, -1, -1),
        'unable to add file monitor': lambda: uwsgi.add_file_monitor(num, tmp_path),
        '': lambda: uwsgi.signal_registered(num),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError, match=f'{what}.*{named}'):
            call()
    for deco in (
        uwsgidecorators.signal(num),
        uwsgidecorators.timer(1, signum=num),
        uwsgidecorators.rbtimer(1, signum=num),
        uwsgidecorators.cron(-1, -1, -1, -1, -1, signum=num),
        uwsgidecorators.filemon(tmp_path, signum=num),
    ):
        with pytest.raises(ValueError, match=named):
            deco(f)
    assert not any(uwsgi.signal_registered(n) for n in range(256))
    # the master's loop and the direct sender (the core's side) refuse them too
    ml = _core.MasterLoop(str(tmp_path / 'control'))
    for call in (
        lambda: ml.register_signal(num, ''),
        lambda: ml.raise_signal(num),
        lambda: ml.signal_registered(num),
        lambda: ml.add_timer(num, 1.0),
        lambda: ml.add_cron(num, _core.CronSpec('* * * * *')),
        lambda: ml.add_file_monitor(num, str(tmp_path)),
    ):
        with pytest.raises(ValueError, match=named):
            call()
    sender = ml.direct_sender()
    for call in (lambda: sender.send(num), lambda: sender.worker(num), lambda: sender.register(num, 'worker1')):
        with pytest.raises(ValueError, match=named):
            call()


@pytest.mark.parametrize(
    'target',
    [
        '',
        'worker',
        'worker0',
        'worker7',
        'workers',
        'active-workers',
        'subscribed',
        'spooler',
        'spoolers',
        'mule',
        'mule0',
        'mule3',
        'mules',
        'farm_pool',
        'farm2',
    ],
)
def test_every_uwsgi_target_is_accepted(target):
    assert _signals.check_target(target) == target


@pytest.mark.parametrize('target', ['nowhere', 'worker-1', 'farm_', 'mule x', 'Workers', 'w' * 64, 'worker99999999999'])
def test_unknown_targets_are_refused(target):
    with pytest.raises(ValueError, match='unable to register signal'):
        _signals.check_target(target)


def test_target_must_be_str_and_handler_callable():
    with pytest.raises(TypeError):
        uwsgi.register_signal(1, b'workers', lambda n: None)
    with pytest.raises(TypeError):
        uwsgi.register_signal(1, '', 'not callable')


if given is not None:

    @given(target=st.text(alphabet='workersplumfa_-0123456789 ', max_size=20))
    def test_python_and_core_agree_on_targets(target, tmp_path_factory):
        ml = _core.MasterLoop(str(tmp_path_factory.mktemp('ctl') / 'c'))
        try:
            ml.register_signal(1, target)
            core_ok = True
        except ValueError:
            core_ok = False
        try:
            _signals.check_target(target)
            ours_ok = True
        except ValueError:
            ours_ok = False
        assert ours_ok == core_ok, target


# ---------------------------------------------------------------------------------------------
# without a master


def test_registration_without_a_master_is_local_and_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        uwsgi.register_signal(1, '', lambda n: None)
        uwsgi.register_signal(1, 'workers', lambda n: None)  # local table: may overwrite
        uwsgi.register_signal(2, '', lambda n: None)
    assert len([w for w in caught if 'no uwsgidecorators master' in str(w.message)]) == 1
    assert issubclass(caught[0].category, NoMasterWarning) and issubclass(NoMasterWarning, RuntimeWarning)
    assert uwsgidecorators.get_free_signal() == 0
    _quiet(uwsgi.register_signal, 0, '', lambda n: None)
    assert uwsgidecorators.get_free_signal() == 3


def test_get_free_signal_raises_when_all_256_are_taken():
    for n in range(256):
        _quiet(uwsgi.register_signal, n, '', lambda n: None)
    with pytest.raises(Exception, match='No free uwsgi signal available'):
        uwsgidecorators.get_free_signal()
    # and so does @timer even with signum= (the default argument is evaluated first)
    with pytest.raises(Exception, match='No free uwsgi signal available'):
        uwsgidecorators.timer(1, signum=5)


def test_sources_without_a_master_check_their_arguments_then_warn():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert uwsgi.add_timer(1, 0.25) is None
        assert uwsgi.add_rb_timer(1, 2, 3) is None
        assert uwsgi.add_cron(1, 40, 2, -1, -1, -1) is True
        assert uwsgi.add_cron(1, '*/5 * * * *', tz='Europe/Paris', catch_up=True) is True
    # one warning per process, naming the first call and pointing at the caller
    assert [str(w.message).split('(')[0] for w in caught] == ['uwsgi.add_timer']
    assert caught[0].filename == __file__
    with pytest.raises(ValueError, match='unable to add timer'):
        uwsgi.add_timer(1, -1)
    with pytest.raises(ValueError, match='unable to add timer'):
        uwsgi.add_timer(1, float('nan'))
    with pytest.raises(TypeError):
        uwsgi.add_timer(1, '3')
    with pytest.raises(ValueError, match='unable to add rb_timer'):
        uwsgi.add_rb_timer(1, 1, -2)
    with pytest.raises(ValueError, match='unable to add cron.*hour'):
        uwsgi.add_cron(1, '0 24 * * *')
    with pytest.raises(ValueError, match='unknown time zone'):
        uwsgi.add_cron(1, 0, 0, -1, -1, -1, tz='Nowhere/Special')
    with pytest.raises(TypeError):
        uwsgi.add_cron(1, 0, 0, -1, -1)
    with pytest.raises(TypeError):
        uwsgi.add_cron(1, '* * * * *', 3)
    with pytest.raises(TypeError):
        uwsgi.add_cron(1, 0.5, 0, -1, -1, -1)


def test_timer_periods_of_zero_are_refused():
    """Issue 10: @timer(0), @rbtimer(0), add_timer(n, 0) were accepted and never fired."""
    for call in (
        lambda: uwsgi.add_timer(1, 0),
        lambda: uwsgi.add_timer(1, 0.0),
        lambda: uwsgi.add_timer(1, 1e-9),  # rounds to 0 us
        lambda: uwsgi.add_rb_timer(1, 0),
        lambda: uwsgi.add_rb_timer(1, 0, 3),
    ):
        with pytest.raises(ValueError, match=r'unable to add (rb_)?timer: the period must be .* over 0'):
            call()

    def f(num):
        pass

    for deco, what in ((uwsgidecorators.timer, 'timer'), (uwsgidecorators.rbtimer, 'rb_timer')):
        with pytest.raises(ValueError, match=f'unable to add {what}: .* over 0'):
            deco(0, signum=9)(f)
        assert uwsgi.signal_registered(9) is None  # refused before anything was registered
    _quiet(uwsgidecorators.timer(0.001, signum=10), f)  # the smallest sensible periods stay


@pytest.mark.parametrize(
    'fields,named',
    [
        ((60, -1, -1, -1, -1), 'minute 60'),
        ((0, 24, -1, -1, -1), 'hour 24'),
        ((0, 0, 32, -1, -1), 'day 32'),
        ((0, 0, 0, -1, -1), 'day 0'),
        ((0, 0, -1, 13, -1), 'month 13'),
        ((0, 0, -1, -1, 8), 'weekday 8'),
        ((0, 0, -32, -1, -1), 'day -32'),
        ((0, 0, 31, 2, -1), 'day 31 never falls in month 2'),
        ((0, 0, 30, 2, -1), 'day 30 never falls in month 2'),
        ((0, 0, 31, 4, -1), 'day 31 never falls in month 4'),
        ((0, 0, 31, 11, -1), 'day 31 never falls in month 11'),
        (('0 0 31 4,6,9,11 *',), 'day 31 never falls in month 4,6,9,11'),
        (('0 0 30 feb *',), 'day 30 never falls in month feb'),
    ],
)
def test_cron_entries_that_could_never_fire_are_refused(fields, named):
    """Issue 10: out-of-range integers and impossible dates were accepted and never fired."""
    with pytest.raises(ValueError, match=f'unable to add cron: cron {named}'):
        uwsgi.add_cron(1, *fields)

    def f(num):
        pass

    # the decorator refuses before anything is registered
    with pytest.raises(ValueError, match=f'cron {named}'):
        uwsgidecorators.cron(*fields, signum=9)(f)
    assert uwsgi.signal_registered(9) is None


def test_cron_keeps_uwsgis_weekday_7_negative_steps_and_february_29():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NoMasterWarning)
        for fields in [(0, 0, -1, -1, 7), (-70, -24, -31, -12, -7), (0, 0, 29, 2, -1), (0, 0, 31, 4, 1)]:
            assert uwsgi.add_cron(1, *fields) is True
            uwsgidecorators.cron(*fields)(lambda n: None)


def test_file_monitor_on_a_missing_path_raises_even_without_a_master(tmp_path):
    with pytest.raises(FileMonitorPathError) as info:
        uwsgi.add_file_monitor(1, tmp_path / 'missing')
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    assert 'missing' in str(info.value)
    _quiet(uwsgi.add_file_monitor, 1, tmp_path)  # exists: accepted (and ignored here)


def test_children_other_than_workers_may_not_register(monkeypatch):
    monkeypatch.setattr(_config.state(), 'role', 'spooler')
    with pytest.raises(ValueError, match='only the master and the workers'):
        uwsgi.register_signal(1, '', lambda n: None)
    assert uwsgi.signal_registered(1) is None
    # a timer goes to the master (as in uWSGI, any process of the instance may add one): here
    # there is none to send it to
    with pytest.raises(MasterNotFoundError):
        uwsgi.add_timer(1, 1)


def _loop_with_worker_queue(tmp_path, *nums):
    ml = _core.MasterLoop(str(tmp_path / 'control'), test_clock=True)
    write_end, read_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    read_end.setblocking(False)
    ml.add_queue('worker', write_end.fileno())
    ml.add_channel('worker', 1, write_end.fileno())
    for n in nums:
        ml.register_signal(n, '')
    return ml, write_end, read_end


def _run_loop(ml, read_end, until, seconds=5.0):
    """Step the loop until `until(received bytes)`; returns (received, events)."""
    got, events = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until(got):
        events += ml.step(0.05)
        try:
            while True:
                got += read_end.recv(64)
        except BlockingIOError:
            pass
    return got, events


@pytest.mark.parametrize('role', ['worker', 'spooler'])
def test_children_send_timers_crons_and_monitors_to_the_master(tmp_path, monkeypatch, role):
    ml, write_end, read_end = _loop_with_worker_queue(tmp_path, 20, 21, 22, 23, 24)
    monkeypatch.setattr(_config.state(), 'role', role)
    monkeypatch.setenv(_config.ENV_CONTROL, str(tmp_path / 'control'))
    watched = tmp_path / 'watched'
    watched.mkdir()
    monkeypatch.chdir(tmp_path)
    try:
        uwsgi.add_timer(20, 0.05)
        uwsgi.add_rb_timer(21, 0.01, 2)
        assert uwsgi.add_cron(22, 30, 4, -1, -1, -1, tz='UTC') is True  # uWSGI's integers
        assert uwsgi.add_cron(23, '31 4 * * *', tz='UTC', catch_up=True) is True  # a crontab string
        uwsgi.add_file_monitor(24, 'watched')  # relative to this process's directory
        got, events = _run_loop(ml, read_end, lambda got: got.count(20) >= 3)
        assert got.count(20) >= 3 and got.count(21) == 2, got
        assert not [e for e in events if e[0] == 'bad_control'], events
        (watched / 'new').write_text('x')
        got, events = _run_loop(ml, read_end, lambda got: 24 in got)
        assert 24 in got and not [e for e in events if e[0] == 'bad_control'], events
        now = int(time.time())
        day = now - now % 86_400 + 86_400
        ml.set_clock_offset(day + 4 * 3600 + 30 * 60 + 1 - now)  # 04:30 UTC tomorrow
        got, _ = _run_loop(ml, read_end, lambda got: 22 in got)
        assert 22 in got and 23 not in got
        ml.set_clock_offset(day + 4 * 3600 + 31 * 60 + 1 - now)  # 04:31
        got, _ = _run_loop(ml, read_end, lambda got: 23 in got)
        assert 23 in got
    finally:
        del ml
        write_end.close()
        read_end.close()


def test_children_check_before_sending(tmp_path, monkeypatch):
    # The caller gets uWSGI-like errors at once; nothing reaches the master.
    ml, write_end, read_end = _loop_with_worker_queue(tmp_path)
    monkeypatch.setattr(_config.state(), 'role', 'worker')
    monkeypatch.setenv(_config.ENV_CONTROL, str(tmp_path / 'control'))
    try:
        with pytest.raises(ValueError, match='unable to add timer'):
            uwsgi.add_timer(1, -1)
        with pytest.raises(ValueError, match='unable to add rb_timer'):
            uwsgi.add_rb_timer(1, 1, -1)
        with pytest.raises(ValueError, match='unable to add cron'):
            uwsgi.add_cron(1, '61 * * * *')
        with pytest.raises(ValueError, match='Mars/Olympus_Mons'):
            uwsgi.add_cron(1, 0, 0, -1, -1, -1, tz='Mars/Olympus_Mons')
        with pytest.raises(FileMonitorPathError):
            uwsgi.add_file_monitor(1, tmp_path / 'missing')
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ValueError, match='too long'):
            # exists, but made absolute it does not fit in a datagram
            uwsgi.add_file_monitor(1, '.' + '/.' * 2040)
        assert ml.step(0.1) == []
    finally:
        del ml
        write_end.close()
        read_end.close()


def test_the_master_reports_why_it_refused_a_datagram(tmp_path, monkeypatch):
    ml, write_end, read_end = _loop_with_worker_queue(tmp_path)
    monkeypatch.setattr(_config.state(), 'role', 'worker')
    monkeypatch.setenv(_config.ENV_CONTROL, str(tmp_path / 'control'))
    gone = tmp_path / 'gone'
    gone.mkdir()
    try:
        uwsgi.add_file_monitor(1, gone)  # exists when checked here...
        gone.rmdir()  # ...not when the master adds it
        events = ml.step(0.2)
        assert [e for e in events if e[0] == 'bad_control' and 'gone' in e[2]], events
    finally:
        del ml
        write_end.close()
        read_end.close()


# ---------------------------------------------------------------------------------------------
# raising


def test_signal_without_a_master_is_a_clear_error():
    with pytest.raises(MasterNotFoundError, match='knows no uwsgidecorators master'):
        uwsgi.signal(1)
    assert issubclass(MasterNotFoundError, RuntimeError)


def test_signal_reaches_a_master_loop_through_its_control_socket(tmp_path, monkeypatch):
    control = str(tmp_path / 'control')
    ml = _core.MasterLoop(control)
    write_end, read_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    read_end.setblocking(False)
    ml.add_queue('worker', write_end.fileno())
    ml.add_channel('worker', 1, write_end.fileno())
    ml.register_signal(9, '')
    monkeypatch.setenv(_config.ENV_CONTROL, control)
    uwsgi.signal(9)
    uwsgi.signal(10)
    events = []
    for _ in range(20):
        events += ml.step(0.05)
        if events:
            break
    assert read_end.recv(8) == b'\x09'
    assert ('unregistered', 10, 'signal') in events
    # the test clock datagram is ignored unless the master enabled it
    _signals.set_test_clock_offset(3600)
    assert ('bad_control', 0, 'unknown control datagram (9 bytes)') in ml.step(0.2)
    del ml
    with pytest.raises(MasterNotFoundError, match='not listening'):
        uwsgi.signal(9)
    write_end.close()
    read_end.close()


def _loop_with_direct_worker(tmp_path, monkeypatch, worker, routes):
    """A master loop with worker `worker`'s channel and its bound direct socket; this process
    raises signals as one of the master's children does. Returns (ml, chan_m, chan_w, direct)."""
    control = str(tmp_path / 'control')
    ml = _core.MasterLoop(control)
    chan_m, chan_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    chan_w.setblocking(False)
    ml.add_queue('worker', chan_m.fileno())
    ml.add_channel('worker', worker, chan_m.fileno())
    for num, target in routes:
        ml.register_signal(num, target)
    direct = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    direct.setblocking(False)
    direct.bind(_core.direct_socket_path(control, worker))
    monkeypatch.setenv(_config.ENV_CONTROL, control)
    monkeypatch.setattr(_signals, '_direct', ml.direct_sender())
    return ml, chan_m, chan_w, direct


def test_a_signal_aimed_at_one_worker_goes_straight_to_it_and_anything_else_to_the_master(tmp_path, monkeypatch):
    ml, chan_m, chan_w, direct = _loop_with_direct_worker(
        tmp_path, monkeypatch, 1, [(21, 'worker1'), (22, 'worker7'), (23, 'workers')]
    )
    assert _signals._direct.worker(21) == 1 and _signals._direct.worker(23) is None
    uwsgi.signal(21)  # one hop: on worker 1's direct socket, the master is not involved
    assert direct.recv(8) == b'\x15'
    uwsgi.signal(22)  # no worker 7 (no socket): through the master, which logs it
    uwsgi.signal(23)  # every worker: through the master
    uwsgi.signal(99)  # unregistered: through the master, which logs it
    events = []
    for _ in range(20):
        events += ml.step(0.05)
        if len(events) >= 2:
            break
    assert ('unrouted', 22, 'worker 7 does not exist') in events
    assert ('unregistered', 99, 'signal') in events
    assert chan_w.recv(8) == b'\x17'
    # worker 1 gone (its socket closed): through the master, which still knows it here
    direct.close()
    uwsgi.signal(21)
    ml.step(0.2)
    assert chan_w.recv(8) == b'\x15'
    # a worker's run-time registration moves the shared table at once
    _signals._direct.register(21, 'workers')
    assert _signals._direct.worker(21) is None
    for sock in (chan_m, chan_w):
        sock.close()


def test_a_burst_beyond_the_direct_sockets_queue_goes_through_the_master_and_none_is_lost(tmp_path, monkeypatch):
    ml, chan_m, chan_w, direct = _loop_with_direct_worker(tmp_path, monkeypatch, 2, [(40, 'worker2')])
    stop = threading.Event()

    def master() -> None:
        while not stop.is_set():
            ml.step(0.02)

    runner = threading.Thread(target=master)
    runner.start()
    # more than a datagram socket queues from unconnected senders
    with open('/proc/sys/net/unix/max_dgram_qlen') as f:
        n = int(f.read()) + 50
    got = {direct: b'', chan_w: b''}
    try:
        for _ in range(n):
            uwsgi.signal(40)
        deadline = time.monotonic() + 20
        while sum(map(len, got.values())) < n and time.monotonic() < deadline:
            for sock in got:
                try:
                    while True:
                        got[sock] += sock.recv(8)
                except BlockingIOError:
                    pass
            time.sleep(0.01)
    finally:
        stop.set()
        runner.join()
    assert got[direct] + got[chan_w] == b'\x28' * n
    assert got[direct] and got[chan_w]  # the first ones straight to the worker, the rest through the master
    direct.close()
    for sock in (chan_m, chan_w):
        sock.close()


def _one_shot_node(answer: int | None):
    """A TCP peer speaking uWSGI's remote-signal exchange once; returns (address, received)."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)
    got: list[bytes] = []

    def serve():
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(4))
            if answer is not None:
                conn.sendall(bytes([255, 0, 0, answer]))
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return f'127.0.0.1:{server.getsockname()[1]}', got


def test_remote_signals_speak_uwsgis_packet():
    addr, got = _one_shot_node(1)
    assert uwsgi.signal(17, addr) is None
    assert got == [bytes([110, 0, 0, 17])]
    addr, got = _one_shot_node(0)
    with pytest.raises(ValueError, match=f'node {addr} rejected signal 18'):
        uwsgi.signal(18, addr)
    addr, got = _one_shot_node(None)  # closes without answering
    with pytest.raises(OSError, match='unable to deliver signal 19'):
        uwsgi.signal(19, addr)


# ---------------------------------------------------------------------------------------------
# decorators


def test_decorators_register_and_keep_uwsgis_attributes(tmp_path):
    def f(num):
        return num

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        t = uwsgidecorators.timer(0.5, target='workers')
        assert t(f) is f and (t.num, t.secs, t.target) == (0, 0.5, 'workers')
        c = uwsgidecorators.cron(40, 2, -1, -1, -1, signum=77)
        assert c(f) is f and (c.num, c.minute, c.hour, c.day, c.month, c.dayweek) == (77, 40, 2, -1, -1, -1)
        s = uwsgidecorators.cron('*/5 * * * *', tz='UTC', catch_up=True)
        assert s(f) is f and (s.minute, s.tz, s.catch_up) == ('*/5 * * * *', 'UTC', True)
        r = uwsgidecorators.rbtimer(2)
        assert r(f) is f and r.secs == 2
        m = uwsgidecorators.filemon(tmp_path, recursive=True)
        assert m(f) is f and m.recursive is True
        assert uwsgidecorators.signal(99, target='spooler')(f) is f
    assert all(uwsgi.signal_registered(n) for n in (t.num, 77, s.num, r.num, m.num, 99))
    with pytest.raises(TypeError, match='missing 3 required'):
        uwsgidecorators.cron(1, 2)
    with pytest.raises(TypeError):
        uwsgidecorators.cron('* * * * *', 2)


@pytest.mark.parametrize(
    ('text', 'ints'),
    [
        ('40 2 * * *', (40, 2, -1, -1, -1)),
        ('*/5 * * * *', (-5, -1, -1, -1, -1)),
        ('0 */2 * * *', (0, -2, -1, -1, -1)),
        ('0 9 * * 7', (0, 9, -1, -1, 0)),
        ('0 0 1 * 5', (0, 0, 1, -1, 5)),
        ('@daily', (0, 0, -1, -1, -1)),
        ('@hourly', (0, -1, -1, -1, -1)),
        ('@weekly', (0, 0, -1, -1, 0)),
        ('@yearly', (0, 0, 1, 1, -1)),
    ],
)
def test_crontab_strings_translate_for_real_uwsgi(text, ints):
    assert uwsgidecorators._crontab_to_uwsgi(text) == ints
    # and the translation fires exactly when the crontab does, over a leap year of minutes' worth
    ours = _core.CronSpec(text)
    theirs = _core.CronSpec.from_uwsgi(*ints)
    for args in [(2024, 2, 29, 0, 0), (2024, 7, 7, 9, 0), (2025, 3, 1, 0, 0), (2025, 12, 31, 23, 55)]:
        assert ours.next_after(*args) == theirs.next_after(*args)


@pytest.mark.parametrize('text', ['*/2 * */3 * *', '0 0 * */2 *', '0 0 * * 1-5', '0 0 1,15 * *', '* * *', '60 * * * *'])
def test_crontab_strings_real_uwsgi_cannot_express_are_refused(text):
    with pytest.raises(ValueError):
        uwsgidecorators._crontab_to_uwsgi(text)


def test_master_loop_refuses_what_the_master_refuses(tmp_path):
    # In the master the loop is attached: a second registration of a number is refused.
    ml = _core.MasterLoop(str(tmp_path / 'c'))
    _signals.attach_master(ml)
    try:
        uwsgi.register_signal(5, '', lambda n: None)
        with pytest.raises(ValueError, match='unable to register signal: signal 5 is already registered'):
            uwsgi.register_signal(5, 'workers', lambda n: None)
        with pytest.raises(FileMonitorPathError):
            uwsgi.add_file_monitor(5, tmp_path / 'nope')
        uwsgi.add_timer(5, 0.5)
        assert uwsgi.add_cron(5, '@hourly', tz='UTC') is True
        assert ml.signal_registered(5) is True
        # a raise in the master is routed at once: no worker, so it is reported as unrouted
        uwsgi.signal(5)
        assert ('unrouted', 5, 'no worker is running') in ml.step(0)
        _signals.set_test_clock_offset(0)  # in the master: straight to the loop
    finally:
        _signals.detach_master()
    assert struct.calcsize('<q') == 8
    assert os.path.exists(tmp_path / 'c')


# ---------------------------------------------------------------------------------------------
# signal_wait / signal_received (real processes: test_signal_wait_proc.py)


def test_signal_wait_without_a_master_is_a_clear_error():
    assert uwsgi.signal_received() == 0
    with pytest.raises(MasterNotFoundError, match=r'signal_wait\(\): no uwsgidecorators master'):
        uwsgi.signal_wait()
    with pytest.raises(MasterNotFoundError):
        uwsgi.signal_wait(3)
    with pytest.raises(ValueError, match='signal number 300 is out of range'):
        uwsgi.signal_wait(300)
    with pytest.raises(TypeError):
        uwsgi.signal_wait('3')  # type: ignore[arg-type]
    _signals.attach_master(object())  # in the master: it routes signals, it receives none
    with pytest.raises(RuntimeError, match='the master routes signals'):
        uwsgi.signal_wait()


def test_signal_wait_runs_handlers_releases_the_gil_and_ends_on_ctrl_c():
    private_w, private_r = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    shared_w, shared_r = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for s in (private_r, shared_r):
        s.setblocking(False)
    ran: list[int] = []
    for n in (4, 5, 6):
        _quiet(uwsgi.register_signal, n, '', ran.append)
    _signals.set_channels(private_r.fileno(), shared_r.fileno(), where='test')
    try:
        # 4 and 5 wait already: 4's handler runs, 5 ends the wait
        private_w.send(bytes([4]))
        shared_w.send(bytes([5]))
        assert uwsgi.signal_wait(5) == b''
        assert uwsgi.signal_received() == 5 and ran == [4, 5]

        # another thread sends while this one waits: the GIL is free meanwhile
        def later(data: bytes) -> None:
            time.sleep(0.2)
            private_w.send(data)

        t = threading.Thread(target=later, args=(bytes([6]),))
        t.start()
        assert uwsgi.signal_wait() == b''
        t.join()
        assert uwsgi.signal_received() == 6 and ran == [4, 5, 6]

        # a thread's wait ends when another thread (here: this one) reads and runs the signal
        seen: list[int] = []

        def waiter() -> None:
            uwsgi.signal_wait(4)
            seen.append(uwsgi.signal_received())

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.2)
        _signals.run_handler(4, where='test')  # what the worker loop does with a 4 it read
        t.join(10)
        assert not t.is_alive() and seen == [4]
        assert uwsgi.signal_received() == 6  # per thread

        # Ctrl-C ends the wait at once
        def interrupt() -> None:
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGINT)

        t = threading.Thread(target=interrupt)
        t.start()
        with pytest.raises(KeyboardInterrupt):
            uwsgi.signal_wait(7)
        t.join()
        assert uwsgi.signal_received() == -1  # as in uWSGI, after a wait that did not end with a signal
        assert signal.set_wakeup_fd(-1) == -1  # the wait gave the wake-up fd back
    finally:
        for s in (private_w, private_r, shared_w, shared_r):
            s.close()
