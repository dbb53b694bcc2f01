"""uWSGI's user locks (``uwsgi.lock``, ``@lock``, ``--locks``) across real processes: workers the
master forked and attached processes that only know what the master publishes.

Every wait is bounded; every process is stopped by pid at teardown (the `procs` fixture).
"""

from __future__ import annotations

import os
import re
import signal
import textwrap
from pathlib import Path

import pytest
import uwsgi
from interop.procs import wait_until
from _uwsgidecorators_runtime import region as _region
from uwsgidecorators import _config, _core
from uwsgidecorators import lock as lock_decorator

CONTROL = re.compile(r'signal control socket: (\S+)')

COUNTER_TASKS = textwrap.dedent(
    """
    import os, threading, time
    from uwsgidecorators import lock, postfork

    COUNTER, GO, DONE = os.environ['LK_COUNTER'], os.environ['LK_GO'], os.environ['LK_DONE']
    N = int(os.environ['LK_N'])

    @lock
    def bump():
        # read, then write: only the lock keeps two processes from losing an increment
        with open(COUNTER, 'r+') as f:
            value = int(f.read() or 0)
            f.seek(0)
            f.write(str(value + 1))
            f.truncate()

    def run():
        while not os.path.exists(GO):
            time.sleep(0.01)
        for _ in range(N):
            bump()
        with open(DONE, 'a') as f:
            f.write(f'{os.getpid()}\\n')

    @postfork
    def start():
        if os.environ.get('LK_ATTACHED') is None:
            threading.Thread(target=run, daemon=True).start()
    """
)


def _control(m) -> str:
    found = wait_until(lambda: CONTROL.search(m.log()), 20, 'the control socket', [m])
    return found.group(1)


def _attached(procs, tmp_path, code: str, *, env: dict | None = None, name: str = 'attached'):
    """A process the master did not fork: the environment is ours (no UWSGIDECORATORS_* from the
    master) plus `env`."""
    base = {k: '' for k in (_config.ENV_CONTROL, _config.ENV_REGION, _config.ENV_SPOOLERS, _config.ENV_MASTER_PID)}
    base.update(env or {})
    return procs.python(['-c', textwrap.dedent(code)], name=name, cwd=tmp_path, env=base)


def test_four_processes_count_to_40000_under_lock(procs, tmp_path):
    (tmp_path / 'counting.py').write_text(COUNTER_TASKS)
    counter, go, done = tmp_path / 'counter', tmp_path / 'go', tmp_path / 'done'
    counter.write_text('0')
    env = {'LK_COUNTER': counter, 'LK_GO': go, 'LK_DONE': done, 'LK_N': '10000'}
    m = procs.master(['--processes', '2', '--locks', '3', '--import', 'counting'], cwd=tmp_path, env=env)
    control = _control(m)
    wait_until(lambda: 'spawned uWSGI worker 2 ' in m.log(), 20, 'two workers', [m])
    run = 'import counting; counting.run()'
    # one attached process knows only the control socket's path, the other calls configure()
    a1 = _attached(procs, tmp_path, run, env={**env, 'LK_ATTACHED': '1', _config.ENV_CONTROL: control})
    a2 = _attached(
        procs,
        tmp_path,
        f'import uwsgidecorators; uwsgidecorators.configure(control={control!r}); {run}',
        env={**env, 'LK_ATTACHED': '1'},
    )
    go.touch()
    wait_until(lambda: done.exists() and len(done.read_text().split()) == 4, 120, 'four counters', [m])
    assert a1.wait(10) == 0 and a2.wait(10) == 0, a1.log() + a2.log()
    assert counter.read_text() == '40000'
    pids = set(done.read_text().split())
    assert {str(a1.pid), str(a2.pid)} < pids  # two workers and the two attached processes
    assert m.stop(signal.SIGTERM) == 0
    assert not Path(control + '.region').exists()  # removed at exit, as the control socket is


HOLD = """
    import sys, time, uwsgi
    uwsgi.lock({n})
    print('held', flush=True)
    time.sleep(120)
"""

TAKE = """
    import logging, sys, uwsgi
    logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s')
    print('waiting', uwsgi.is_locked({n}), flush=True)
    uwsgi.lock({n})
    print('taken', flush=True)
    uwsgi.unlock({n})
"""


def test_a_killed_holder_never_leaves_the_lock_stuck(procs, tmp_path):
    m = procs.master(['--processes', '1', '--locks', '2'], cwd=tmp_path)
    env = {_config.ENV_CONTROL: _control(m)}
    holder = _attached(procs, tmp_path, HOLD.format(n=2), env=env, name='holder')
    wait_until(lambda: 'held' in holder.log(), 20, 'the holder', [holder])
    taker = _attached(procs, tmp_path, TAKE.format(n=2), env=env, name='taker')
    wait_until(lambda: 'waiting True' in taker.log(), 20, 'the taker waiting', [taker])
    holder.send(signal.SIGKILL)
    assert taker.wait(5) == 0, taker.log()
    assert 'taken' in taker.log()
    assert f'lock 2: its holder (pid {holder.pid}) died holding it' in taker.log()
    m.stop(signal.SIGTERM)


def test_ctrl_c_interrupts_a_waiting_lock(procs, tmp_path):
    m = procs.master(['--processes', '1'], cwd=tmp_path)
    env = {_config.ENV_CONTROL: _control(m)}
    holder = _attached(procs, tmp_path, HOLD.format(n=0), env=env, name='holder')
    wait_until(lambda: 'held' in holder.log(), 20, 'the holder', [holder])
    waiter = _attached(
        procs,
        tmp_path,
        """
        import uwsgi
        print('waiting', flush=True)
        try:
            uwsgi.lock(0)
        except KeyboardInterrupt:
            print('interrupted', flush=True)
        """,
        env=env,
        name='waiter',
    )
    wait_until(lambda: 'waiting' in waiter.log(), 20, 'the waiter', [waiter])
    waiter.send(signal.SIGINT)
    assert waiter.wait(10) == 0, waiter.log()
    assert 'interrupted' in waiter.log()
    holder.stop(signal.SIGKILL)
    m.stop(signal.SIGTERM)


def test_numbers_and_ownership_are_checked_against_the_masters_table(procs, tmp_path):
    m = procs.master(['--processes', '1', '--locks', '2'], cwd=tmp_path)
    control = _control(m)
    p = _attached(
        procs,
        tmp_path,
        """
        import uwsgi
        uwsgi.lock(2); uwsgi.unlock(2)
        for bad in (3, -1):
            try:
                uwsgi.lock(bad)
            except ValueError as e:
                print('ValueError', e)
        try:
            uwsgi.unlock(1)
        except RuntimeError as e:
            print('RuntimeError', e)
        """,
        env={_config.ENV_CONTROL: control},
    )
    assert p.wait(20) == 0, p.log()
    assert 'ValueError invalid lock number 3: this instance has locks 0 to 2' in p.log()
    assert 'ValueError invalid lock number -1' in p.log()
    assert 'RuntimeError lock 1 is not held by this thread' in p.log()
    # told of a master whose region is not there: an error, not a lock that protects nothing
    q = _attached(
        procs, tmp_path, 'import uwsgi; uwsgi.lock()', env={_config.ENV_CONTROL: str(tmp_path / 'nope')}, name='lost'
    )
    assert q.wait(20) == 1
    assert 'MasterNotFoundError' in q.log() and 'nope.region' in q.log()
    assert m.stop(signal.SIGTERM) == 0


def test_a_stale_region_is_replaced_with_0600(procs, tmp_path):
    spool = tmp_path / 'spool'
    spool.mkdir(mode=0o700)
    region = spool / '.uwsgidecorators' / 'control.region'
    region.parent.mkdir(mode=0o700)
    region.write_bytes(b'left by a killed master')
    m = procs.master(['--spooler', spool, '--processes', '1'], cwd=tmp_path)
    _control(m)
    wait_until(lambda: region.stat().st_size > 100, 20, 'the new region', [m])
    assert region.stat().st_mode & 0o777 == 0o600
    # a process that knows only the spool dir finds it (and the master's lock table)
    p = _attached(
        procs,
        tmp_path,
        f'import uwsgi, uwsgidecorators; uwsgidecorators.configure(spooler={str(spool)!r}); uwsgi.lock(); '
        'from _uwsgidecorators_runtime import region as _region; print("path", _region.region().path)',
    )
    assert p.wait(20) == 0, p.log()
    assert f'path {region}' in p.log()
    assert m.stop(signal.SIGTERM) == 0
    assert not region.exists()


# -- without any master ------------------------------------------------------------------------


@pytest.fixture
def no_master(monkeypatch):
    for k in (_config.ENV_CONTROL, _config.ENV_REGION, _config.ENV_SPOOLERS, _config.ENV_MASTER_PID):
        monkeypatch.delenv(k, raising=False)
    _config.reset()
    yield
    _config.reset()


def test_without_a_master_locks_are_private_and_checked(no_master):
    r = _region.region()
    assert r.path is None and r.nlocks == _region.PRIVATE_LOCKS
    assert not uwsgi.is_locked()
    uwsgi.lock()
    assert uwsgi.is_locked()
    with pytest.raises(RuntimeError, match='already held by this thread'):
        uwsgi.lock()
    uwsgi.unlock()
    with pytest.raises(RuntimeError, match='not held by this thread'):
        uwsgi.unlock()
    with pytest.raises(ValueError, match='invalid lock number 64'):
        uwsgi.lock(_region.PRIVATE_LOCKS)
    with pytest.raises(ValueError, match='invalid lock number -1'):
        uwsgi.is_locked(-1)


def test_the_lock_decorator_runs_the_function_under_lock_0(no_master):
    seen = []

    @lock_decorator
    def dangerous_op(x: int) -> int:
        seen.append(uwsgi.is_locked(0))
        return x * 2

    assert dangerous_op(21) == 42
    assert seen == [True]
    assert not uwsgi.is_locked(0)


def test_a_lock_is_given_back_when_the_function_raises(no_master):
    @lock_decorator
    def boom() -> None:
        raise KeyError('x')

    with pytest.raises(KeyError):
        boom()
    assert not uwsgi.is_locked(0)


def test_region_open_refuses_a_file_that_is_not_one(tmp_path):
    bad = tmp_path / 'r'
    bad.write_bytes(b'\0' * 4096)
    with pytest.raises(OSError, match='not a uwsgidecorators region'):
        _core.Region.open(bad)
    assert os.path.exists(bad)


DIRECT_TASKS = textwrap.dedent(
    """
    import os
    from uwsgidecorators import signal

    @signal(17, target='worker2')
    def got(num):
        with open(os.environ['SIG_OUT'], 'a') as f:
            f.write(f'{num} {os.getpid()}\\n')
    """
)


def test_an_attached_process_delivers_to_one_worker_through_the_region(procs, tmp_path):
    (tmp_path / 'direct_tasks.py').write_text(DIRECT_TASKS)
    out = tmp_path / 'out'
    m = procs.master(['--processes', '2', '--import', 'direct_tasks'], cwd=tmp_path, env={'SIG_OUT': out})
    control = _control(m)
    wait_until(lambda: 'spawned uWSGI worker 2 ' in m.log(), 20, 'two workers', [m])
    p = _attached(
        procs,
        tmp_path,
        """
        import uwsgi
        from uwsgidecorators import _signals
        sender = _signals._attached_direct()
        print('route', sender.worker(17), sender.worker(18))
        assert sender.send(17)  # straight to worker 2's socket, not through the master
        """,
        env={_config.ENV_CONTROL: control},
    )
    assert p.wait(20) == 0, p.log()
    assert 'route 2 None' in p.log()
    worker2 = int(re.search(r'spawned uWSGI worker 2 \(pid: (\d+)\)', m.log()).group(1))
    wait_until(lambda: out.exists() and out.read_text() == f'17 {worker2}\n', 20, 'worker 2 ran it', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_a_lock_held_across_a_reload_stays_held_and_the_region_file_is_the_same(procs, tmp_path):
    """SIGHUP re-executes the master, which adopts the region file (same inode) instead of making
    it again: a lock an attached process holds stays held, another attached process keeps waiting
    on it and gets it when the holder lets go (no 'died holding it' take-over), and a direct
    sender cached before the reload still reaches worker 2 after it."""
    (tmp_path / 'direct_tasks.py').write_text(DIRECT_TASKS)
    out, release = tmp_path / 'out', tmp_path / 'release'
    m = procs.master(
        ['--processes', '2', '--locks', '2', '--import', 'direct_tasks'], cwd=tmp_path, env={'SIG_OUT': out}
    )
    control = _control(m)
    region = Path(control + '.region')
    wait_until(lambda: 'spawned uWSGI worker 2 ' in m.log(), 20, 'two workers', [m])
    ino = region.stat().st_ino
    env = {_config.ENV_CONTROL: control}
    holder = _attached(
        procs,
        tmp_path,
        f"""
        import os, time, uwsgi
        from uwsgidecorators import _signals
        sender = _signals._attached_direct()  # the region mapped (and cached) before the reload
        uwsgi.lock(1)
        print('held', flush=True)
        while not os.path.exists({str(release)!r}):
            time.sleep(0.05)
        print('sent', sender.send(17), flush=True)
        uwsgi.unlock(1)
        print('released', flush=True)
        """,
        env={**env, 'SIG_OUT': str(out)},
        name='holder',
    )
    wait_until(lambda: 'held' in holder.log(), 20, 'the holder', [holder])
    waiter = _attached(procs, tmp_path, TAKE.format(n=1), env=env, name='waiter')
    wait_until(lambda: 'waiting True' in waiter.log(), 20, 'the waiter waiting', [waiter])
    old_worker2 = int(re.search(r'spawned uWSGI worker 2 \(pid: (\d+)\)', m.log()).group(1))
    m.send(signal.SIGHUP)
    wait_until(lambda: 'gracefully (RE)spawned uwsgidecorators master' in m.log(), 40, 'the re-exec', [m])
    wait_until(lambda: len(re.findall(r'spawned uWSGI worker 2 ', m.log())) >= 2, 20, 'worker 2 again', [m])
    assert region.stat().st_ino == ino  # adopted, not made again
    assert 'taken' not in waiter.log()  # still waiting: the lock is still held
    # a process that maps the region now sees the same lock held
    late = _attached(procs, tmp_path, 'import uwsgi; print("late", uwsgi.is_locked(1), uwsgi.is_locked(0))', env=env)
    assert late.wait(20) == 0, late.log()
    assert 'late True False' in late.log()
    assert 'taken' not in waiter.log()
    new_worker2 = int(re.findall(r'spawned uWSGI worker 2 \(pid: (\d+)\)', m.log())[-1])
    assert new_worker2 != old_worker2
    # the new worker 2 has bound its direct socket once its signal is registered again
    wait_until(lambda: os.path.exists(control + '.w2'), 20, "worker 2's direct socket", [m])
    release.touch()
    assert holder.wait(20) == 0, holder.log()
    assert 'sent True' in holder.log() and 'released' in holder.log()
    assert waiter.wait(20) == 0, waiter.log()
    assert 'taken' in waiter.log() and 'died holding it' not in waiter.log()
    wait_until(lambda: out.exists() and out.read_text() == f'17 {new_worker2}\n', 20, 'worker 2 ran it', [m])
    assert m.stop(signal.SIGTERM) == 0
    assert not region.exists()  # a real exit removes it
