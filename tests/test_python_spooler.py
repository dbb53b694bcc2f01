"""The spooler loop (_spooler.run_spooler) in-process: result mapping, working directory, logs.

The loop runs in a thread with its own stop flag (signals are the master's business; the
multi-process behaviour is in test_cli_master.py). Every join is bounded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest
import uwsgi
from uwsgidecorators import _config, configure
from uwsgidecorators._roles.spooler import StopFlag, _result_code, run_spooler


@pytest.fixture
def qdir(spool_dir, monkeypatch):
    for var in (_config.ENV_SPOOLERS, _config.ENV_OPT, _config.ENV_MASTER_PID, _config.ENV_DURABLE):
        monkeypatch.delenv(var, raising=False)
    _config.reset()
    configure(spooler=spool_dir)
    cwd = os.getcwd()
    yield spool_dir
    os.chdir(cwd)  # the loop chdirs into the spool dir, as uWSGI's spooler does
    _config.reset()


def _run(directory, *, until=None, timeout=10.0, **kwargs):
    """Run the loop in a thread until it returns (max_tasks) or `until()` holds; always stop it."""
    stop = StopFlag()
    result = {}

    def target():
        result['rc'] = run_spooler(directory, stop=stop, frequency=0.2, **kwargs)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    end = time.monotonic() + timeout
    try:
        while t.is_alive() and time.monotonic() < end:
            if until is not None and until():
                break
            time.sleep(0.02)
    finally:
        stop.requested = True
        sp = stop.spooler
        if sp is not None:
            sp.wake()
        t.join(5)
    assert not t.is_alive(), 'the spooler loop did not stop'
    return result.get('rc')


def _files(d: Path):
    # queued jobs only: dead letters and quarantine are not in the queue any more
    return sorted(
        p for p in d.rglob('uwsgi_spoolfile_on_*') if p.is_file() and p.parent.name not in ('dead', 'quarantine')
    )


def test_result_codes_like_the_python_plugin():
    assert [_result_code(v) for v in (-2, -1, 0, 1, True, False)] == [-2, -1, 0, 1, 1, 0]
    assert [_result_code(v) for v in (None, 'x', 1.5, [])] == [-1, -1, -1, -1]
    assert _result_code(2**32 - 2) == -2  # C int truncation


def test_ok_deletes_and_logs(qdir, monkeypatch, caplog):
    seen = []

    def spooler(env):
        seen.append((dict(env), os.getcwd()))
        return uwsgi.SPOOL_OK

    monkeypatch.setattr(uwsgi, 'spooler', spooler, raising=False)
    path = uwsgi.spool({b'k': b'v', b'body': b'payload'})
    name = os.path.basename(path)
    with caplog.at_level(logging.INFO, logger='uwsgidecorators.spooler'):
        assert _run(qdir, max_tasks=1) == 0
    env, cwd = seen[0]
    assert list(env) == ['spooler_task_name', b'k', 'body']
    assert env['spooler_task_name'] == name and env['body'] == b'payload'
    assert cwd == str(qdir)
    assert _files(qdir) == []
    assert f'done with task {name.decode()} after 0 seconds' in caplog.text
    assert f'[spooler {qdir} pid: {os.getpid()}]' in caplog.text


def test_priority_task_runs_in_its_directory_and_chdir_option(qdir, monkeypatch, tmp_path):
    cwds = []
    monkeypatch.setattr(uwsgi, 'spooler', lambda env: cwds.append(os.getcwd()) or -2, raising=False)
    uwsgi.spool({b'priority': b'3'})
    _run(qdir, max_tasks=1)
    assert cwds == [str(qdir / '3')]
    uwsgi.spool({b'a': b'b'})
    _run(qdir, max_tasks=1, chdir=str(tmp_path))
    assert cwds[-1] == str(tmp_path)


def test_a_task_that_moves_away_does_not_move_the_next(qdir, monkeypatch, tmp_path):
    # The loop goes back to the spool directory before it waits (not after the wake-up), so a
    # task's own chdir never leaks into the next task.
    cwds = []

    def handler(env):
        cwds.append(os.getcwd())
        if env[b'n'] == b'1':
            os.chdir(tmp_path)
            uwsgi.spool({b'n': b'2'})
        return -2

    monkeypatch.setattr(uwsgi, 'spooler', handler, raising=False)
    uwsgi.spool({b'n': b'1'})
    _run(qdir, max_tasks=2)
    assert cwds == [str(qdir), str(qdir)]
    uwsgi.spool({b'n': b'3'})
    _run(qdir, max_tasks=1, chdir=str(tmp_path / 'elsewhere'))  # missing: logged, task still runs
    assert len(cwds) == 3


@pytest.mark.parametrize('answer', [None, -1, 1, True, 'nope'])
def test_other_results_keep_the_file(qdir, monkeypatch, answer, caplog):
    monkeypatch.setattr(uwsgi, 'spooler', lambda env: answer, raising=False)
    uwsgi.spool({b'a': b'b'})
    with caplog.at_level(logging.INFO, logger='uwsgidecorators.spooler'):
        assert _run(qdir, max_tasks=1) == 0  # counted as a task, file kept for a later pass
    assert len(_files(qdir)) == 1
    assert 'will run again' in caplog.text


def test_quiet_hides_per_task_lines(qdir, monkeypatch, caplog):
    monkeypatch.setattr(uwsgi, 'spooler', lambda env: -2, raising=False)
    uwsgi.spool({b'a': b'b'})
    with caplog.at_level(logging.INFO, logger='uwsgidecorators.spooler'):
        _run(qdir, max_tasks=1, quiet=True)
    assert 'done with task' not in caplog.text and _files(qdir) == []


def test_exception_is_logged_and_dead_lettered(qdir, monkeypatch, caplog):
    def boom(env):
        raise RuntimeError('task exploded')

    monkeypatch.setattr(uwsgi, 'spooler', boom, raising=False)
    uwsgi.spool({b'a': b'b'})
    with caplog.at_level(logging.INFO, logger='uwsgidecorators.spooler'):
        _run(qdir, max_tasks=1, max_attempts=1)
    assert 'RuntimeError: task exploded' in caplog.text and 'Traceback' in caplog.text
    assert _files(qdir) == []
    # the dead letter and, beside it, why it is there: the last traceback
    [dead] = [p for p in (qdir / 'dead').iterdir() if not p.name.endswith('.reason')]
    reason = (qdir / 'dead' / (dead.name + '.reason')).read_text()
    assert 'failed 1 time (' in reason and 'Traceback' in reason and 'RuntimeError: task exploded' in reason
    assert sorted(p.name for p in (qdir / 'dead').iterdir()) == [dead.name, dead.name + '.reason']


def test_zero_and_missing_function_are_not_tasks(qdir, monkeypatch, caplog):
    monkeypatch.delattr(uwsgi, 'spooler', raising=False)
    uwsgi.spool({b'a': b'b'})
    with caplog.at_level(logging.INFO, logger='uwsgidecorators.spooler'):
        _run(qdir, max_tasks=1, until=lambda: 'unable to find the spooler function' in caplog.text)
    # a task nobody took does not count towards --spooler-max-tasks
    assert 'maximum number of tasks reached' not in caplog.text
    assert len(_files(qdir)) == 1
    caplog.clear()
    monkeypatch.setattr(uwsgi, 'spooler', lambda env: 0, raising=False)
    with caplog.at_level(logging.INFO, logger='uwsgidecorators.spooler'):
        _run(qdir, max_tasks=1, until=lambda: 'unable to find the spooler function' in caplog.text)
    assert 'maximum number of tasks reached' not in caplog.text
    assert len(_files(qdir)) == 1


def test_stop_flag_ends_an_idle_loop_quickly(qdir):
    stop = StopFlag()
    t = threading.Thread(target=run_spooler, args=(qdir,), kwargs={'stop': stop}, daemon=True)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    stop.handler(15, None)  # what SIGTERM does
    t.join(5)
    assert not t.is_alive() and time.monotonic() - t0 < 2


def test_set_spooler_frequency(qdir):
    assert uwsgi.set_spooler_frequency(3) is True
    with pytest.raises(ValueError):
        uwsgi.set_spooler_frequency(0)
    uwsgi._local_spooler_frequency = 0
