"""Graceful reload of the master, as real processes: SIGHUP, `uwsgi.reload()`, `--touch-reload`,
`--py-autoreload`, and `--touch-spoolers-reload` (the spoolers alone).

A reload lets running tasks finish, then the master re-executes itself (same pid) and imports the
task modules afresh; queued tasks are not lost; a module that no longer imports leaves the running
processes as they were, and the log says why. Every wait is bounded; the master is stopped by pid
(the `procs` fixture).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from interop import sigapp
from interop.procs import pid_alive, read_jsonl, wait_until

_events = sigapp.events

BODY = """
rec('import', master=os.environ.get('UWSGIDECORATORS_RELOAD_CHECK') != '1')

@spool(pass_arguments=True)
def long_task(tag, seconds):
    rec('start', tag=tag)
    time.sleep(seconds)
    rec('done', tag=tag)

@spool(pass_arguments=True)
def quick(tag):
    rec('quick', tag=tag)

@postfork
def up():
    rec('up')
"""

RESPAWNED = 'gracefully (RE)spawned uwsgidecorators master'
SPAWNED = re.compile(r'spawned (?:uWSGI worker \d+|the uWSGI spooler on dir \S+) \(?(?:with )?pid:? (\d+)')


def _start(procs, tmp_path, *args, workers=1):
    return sigapp.start(procs, tmp_path, BODY, '--reload-mercy', '30', *args, workers=workers, spooler=True)


def _master_imports(m, out):
    return [r for r in _events(out, 'import') if r['pid'] == m.pid and r['master']]


def _enqueue(procs, tmp_path, calls):
    """A producer process (not the master's) enqueues with only the spool dir."""
    code = (
        'import importlib.util, sys\n'
        "spec = importlib.util.spec_from_file_location('producer', sys.argv[1])\n"
        'mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n'
        f'{calls}\n'
    )
    p = procs.python(
        ['-c', code, str(tmp_path / 'sigtasks.py')],
        name='producer',
        env={'UWSGIDECORATORS_SPOOLERS': str(tmp_path / 'spool'), 'SIG_OUT': str(tmp_path / 'out.jsonl')},
    )
    assert p.wait(20) == 0, p.log()


def _children(m, n):
    """The pids of the processes the master spawned so far (in log order)."""
    wait_until(lambda: len(SPAWNED.findall(m.log())) >= n, 20, f'{n} children spawned', [m])
    return [int(p) for p in SPAWNED.findall(m.log())]


def test_sighup_lets_the_running_task_finish_reimports_and_loses_nothing(procs, tmp_path):
    m, out = _start(procs, tmp_path)
    wait_until(lambda: len(_events(out, 'up')) >= 2, 20, 'spooler and worker up', [m])
    _enqueue(procs, tmp_path, "mod.long_task.spool('L', 3)")
    wait_until(lambda: _events(out, 'start'), 20, 'the long task to start', [m])
    _enqueue(procs, tmp_path, "[mod.quick.spool(f'q{i}') for i in range(5)]")
    old_spooler = _events(out, 'start')[0]['pid']
    m.send(signal.SIGHUP)
    wait_until(lambda: RESPAWNED in m.log(), 40, 'the master to re-execute itself', [m])
    wait_until(lambda: len(_events(out, 'quick')) >= 5, 30, 'the queued tasks after the reload', [m])
    assert [r['tag'] for r in _events(out, 'start')] == ['L']  # ran once: not killed, not re-run
    assert [(r['tag'], r['pid']) for r in _events(out, 'done')] == [('L', old_spooler)]
    assert sorted(r['tag'] for r in _events(out, 'quick')) == [f'q{i}' for i in range(5)]
    assert {r['pid'] for r in _events(out, 'quick')}.isdisjoint({old_spooler})
    assert len(_master_imports(m, out)) == 2  # imported afresh, in the same process (same pid)
    assert not pid_alive(old_spooler)
    log = m.log()
    assert 'SIGHUP received' in log and 'binary reloading uwsgidecorators' in log
    assert f'gracefully (RE)spawned uwsgidecorators master (pid: {m.pid})' in log
    assert 'another uwsgidecorators master' not in log
    assert m.stop(signal.SIGTERM) == 0
    assert not list((tmp_path / 'spool').glob('uwsgi_spoolfile*'))
    assert m.leftovers() == []


def test_a_module_that_no_longer_imports_keeps_the_running_processes(procs, tmp_path):
    m, out = _start(procs, tmp_path, workers=2)
    before = _children(m, 3)
    wait_until(lambda: len(_events(out, 'up')) >= 3, 20, 'children up', [m])
    module = tmp_path / 'sigtasks.py'
    good = module.read_text()
    module.write_text(good + "\nraise RuntimeError('broken on purpose')\n")
    m.send(signal.SIGHUP)
    wait_until(lambda: 'reload cancelled' in m.log(), 40, 'the import check to fail', [m])
    log = m.log()
    assert 'broken on purpose' in log and 'the running processes are kept' in log
    assert RESPAWNED not in log
    assert all(pid_alive(p) for p in before)
    time.sleep(1)  # a turn of the loop later, still nothing stopped or spawned
    assert _children(m, 3) == before and all(pid_alive(p) for p in before)
    assert len(_master_imports(m, out)) == 1
    # fixed: the next request reloads
    module.write_text(good)
    m.send(signal.SIGHUP)
    wait_until(lambda: RESPAWNED in m.log(), 40, 'the reload once fixed', [m])
    wait_until(lambda: len(_master_imports(m, out)) == 2, 20, 'the second import', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_touch_reload_and_uwsgi_reload(procs, tmp_path):
    touch = tmp_path / 'reload.touch'
    touch.write_text('')
    m, out = _start(procs, tmp_path, '--touch-reload', touch)
    wait_until(lambda: len(_events(out, 'up')) >= 2, 20, 'children up', [m])
    os.utime(touch, (time.time() + 5, time.time() + 5))
    wait_until(lambda: len(_master_imports(m, out)) == 2, 40, 'the reload after the touch', [m])
    assert f'{touch} has been touched... grace them all' in m.log()
    # uwsgi.reload() from a process the master did not fork, through the control socket
    control = sigapp.control(m)
    p = procs.python(
        ['-c', 'import uwsgi; print(uwsgi.reload())'], name='reloader', env={'UWSGIDECORATORS_CONTROL': control}
    )
    assert p.wait(20) == 0, p.log()
    wait_until(lambda: len(_master_imports(m, out)) == 3, 40, 'the reload asked by uwsgi.reload()', [m])
    assert 'uwsgi.reload() called' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_py_autoreload_reloads_when_a_module_file_changes(procs, tmp_path):
    m, out = _start(procs, tmp_path, '--py-autoreload', '1')
    wait_until(lambda: len(_events(out, 'up')) >= 2, 20, 'children up', [m])
    module = tmp_path / 'sigtasks.py'
    module.write_text(module.read_text() + "\nrec('import', master=False, second=True)\n")
    os.utime(module, (time.time() + 5, time.time() + 5))
    wait_until(lambda: len(_master_imports(m, out)) == 2, 40, 'the reload after the edit', [m])
    assert f'module/file {module} has been modified' in m.log()
    assert [r for r in _events(out, 'import') if r.get('second') and r['pid'] == m.pid]  # the new code ran
    assert m.stop(signal.SIGTERM) == 0


def test_touch_spoolers_reload_restarts_only_the_spoolers(procs, tmp_path):
    touch = tmp_path / 'spoolers.touch'
    touch.write_text('')
    m, out = _start(procs, tmp_path, '--touch-spoolers-reload', touch, workers=2)
    wait_until(lambda: len(_events(out, 'up')) >= 3, 20, 'children up', [m])
    ups = read_jsonl(out)
    spooler = [r['pid'] for r in ups if r['event'] == 'up' and r['spooler']]
    workers = [r['pid'] for r in ups if r['event'] == 'up' and not r['spooler']]
    assert len(spooler) == 1 and len(workers) == 2
    os.utime(touch, (time.time() + 5, time.time() + 5))
    wait_until(lambda: len(_events(out, 'up')) >= 4, 20, 'a new spooler', [m])
    new = [r for r in _events(out, 'up')][3:]
    assert [r['spooler'] for r in new] == [True] and new[0]['pid'] != spooler[0]
    assert not pid_alive(spooler[0]) and all(pid_alive(w) for w in workers)
    assert len(_master_imports(m, out)) == 1 and RESPAWNED not in m.log()
    assert 'spoolers reload' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_reload_keeps_the_private_control_dir_and_the_pidfile_until_the_real_exit(procs, tmp_path):
    """Without a spool dir the control socket lives in a private temporary directory: a reload
    keeps it (same path), and only the real exit removes it and, with --vacuum, the pidfile."""
    pidfile = tmp_path / 'm.pid'
    m, out = sigapp.start(procs, tmp_path, BODY, '--pidfile', pidfile, '--vacuum', workers=1)
    wait_until(lambda: _events(out, 'up'), 20, 'the worker', [m])
    control = sigapp.control(m)
    m.send(signal.SIGHUP)
    wait_until(lambda: len(_events(out, 'up')) >= 2, 40, 'the worker after the reload', [m])
    assert RESPAWNED in m.log()
    assert re.findall(r'signal control socket: (\S+)', m.log()) == [control, control]
    assert os.path.exists(control) and pidfile.read_text() == f'{m.pid}\n'
    assert 'VACUUM' not in m.log()
    assert m.stop(signal.SIGTERM) == 0
    assert not os.path.exists(os.path.dirname(control)) and not pidfile.exists()


def _runs_as(uid, gid):
    import subprocess

    try:
        return subprocess.run([sys.executable, '-c', 'pass'], user=uid, group=gid, timeout=20).returncode == 0
    except PermissionError:
        return False


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='dropping privileges needs root')


@needs_root
def test_reload_after_dropping_privileges(procs):
    """The re-executed master runs as the --uid user already: it adopts what it had and does not
    try again what needed root (pidfile, log file, chown, setuid)."""
    import grp
    import pwd
    import shutil
    import tempfile

    try:
        uid, gid = pwd.getpwnam('nobody').pw_uid, grp.getgrnam('nogroup').gr_gid
    except KeyError:
        pytest.skip('no user nobody / group nogroup here')
    world = Path(tempfile.mkdtemp(prefix='uwsgidecorators-reload-', dir='/tmp'))
    try:
        os.chmod(world, 0o755)
        out = world / 'out.jsonl'
        out.touch()
        os.chmod(out, 0o666)
        (world / 'sigtasks.py').write_text(sigapp.HEADER + BODY)
        m = procs.master(
            ['--uid', 'nobody', '--gid', 'nogroup', '--spooler', world / 'spool', '--import', world / 'sigtasks.py',
             '--processes', '1', '--pidfile', world / 'm.pid', '--logto', world / 'm.log'],
            env={'SIG_OUT': out},
            cwd=world,
        )
        wait_until(lambda: len(_events(out, 'up')) >= 2, 20, 'children up', [m])
        m.send(signal.SIGHUP)
        if not _runs_as(uid, gid):
            # this interpreter is not executable by nobody (under /root here): a reload cannot
            # re-execute it, so it is refused up front with the reason, and nothing stops
            wait_until(lambda: 'no reload' in (world / 'm.log').read_text(), 20, 'the refusal', [m])
            log = (world / 'm.log').read_text()
            assert f'cannot run {sys.executable} for the import check (Permission denied)' in log, log
            assert all(pid_alive(r['pid']) for r in _events(out, 'up')) and RESPAWNED not in log
            assert m.stop(signal.SIGTERM) == 0
            return
        wait_until(lambda: len(_events(out, 'up')) >= 4, 40, 'children after the reload', [m])
        log = (world / 'm.log').read_text()
        assert RESPAWNED in log and 'the master stops' not in log, log
        status = Path(f'/proc/{m.pid}/status').read_text()
        assert f'Uid:\t{uid}\t' in status and f'Gid:\t{gid}\t' in status
        assert (world / 'm.pid').read_text() == f'{m.pid}\n'
        assert len(_master_imports(m, out)) == 2
        assert m.stop(signal.SIGTERM) == 0
    finally:
        shutil.rmtree(world, ignore_errors=True)


@needs_root
def test_reload_with_uid_logto_and_pidfile_hands_them_over(procs, tmp_path):
    """--uid/--gid (root here, so the interpreter stays executable), --logto and --pidfile: the
    re-executed master does not drop privileges, open the log or write the pidfile again."""
    logfile, pidfile = tmp_path / 'm.log', tmp_path / 'm.pid'
    m, out = sigapp.start(
        procs, tmp_path, BODY, '--uid', '0', '--gid', '0', '--logto', logfile, '--pidfile', pidfile, workers=1
    )
    wait_until(lambda: _events(out, 'up'), 20, 'the worker', [m])
    m.send(signal.SIGHUP)
    wait_until(lambda: len(_events(out, 'up')) >= 2, 40, 'the worker after the reload', [m])
    log = logfile.read_text()
    assert RESPAWNED in log and log.count('writing pidfile') == 1 and log.count('setuid() to 0') == 1, log
    assert pidfile.read_text() == f'{m.pid}\n' and len(_master_imports(m, out)) == 2
    assert m.stop(signal.SIGTERM) == 0


@pytest.mark.skipif(shutil.which('erl') is None, reason='erl not installed (apt-get install erlang-base)')
def test_a_reload_restarts_the_erlang_node_which_answers_again(procs, tmp_path):
    from tests.test_erlang_proc import COOKIE, TASKS, _erl, _free_port, _listening, _result

    port = _free_port()
    env = {'ERL_EPMD_PORT': str(port), 'HOME': str(tmp_path), 'PATH': '/usr/bin:/bin'}
    epmd = procs.start([shutil.which('epmd'), '-port', str(port), '-address', '127.0.0.1'], name='epmd', env=env)
    wait_until(lambda: _listening(port), 10, 'epmd', [epmd])
    (tmp_path / 'tasks.py').write_text(TASKS)
    m = procs.master(
        ['--erlang', 'ours@localhost', '--erlang-cookie', COOKIE, '--import', 'tasks', '--processes', '1'],
        cwd=tmp_path,
        env={'ERL_EPMD_PORT': str(port)},
    )
    registered = 'Erlang C-Node ours@localhost registered on port'
    wait_until(lambda: registered in m.log(), 30, 'our node', [m])
    m.send(signal.SIGHUP)
    wait_until(lambda: m.log().count(registered) == 2, 60, 'our node after the reload', [m])
    assert RESPAWNED in m.log() and m.log().count('spawned the Erlang node') == 2
    script = """
        {echo, 'ours@localhost'} ! {hello, 1},
        R1 = receive X -> X after 15000 -> timeout end,
        file:write_file(OUT, io_lib:format("~p.~ndone.~n", [R1])),
        halt().
    """
    erl, out = _erl(procs, tmp_path, 'after', COOKIE, script, env)
    assert _result(out, erl) == '{echoed,{hello,1}}.done.', m.tail()
    assert m.stop(signal.SIGTERM) == 0


def test_sighup_lets_a_running_signal_handler_finish(procs, tmp_path):
    body = BODY + """
@signal(60)
def busy(num):
    rec('handler_start')
    time.sleep(2)
    rec('handler_done')

if os.environ.get('UWSGIDECORATORS_RELOAD_CHECK') != '1' and not os.path.exists(MARK):
    @postfork
    def kick():
        open(MARK, 'w').close()
        uwsgi.signal(60)
"""
    m, out = sigapp.start(procs, tmp_path, body, workers=1)
    wait_until(lambda: _events(out, 'handler_start'), 20, 'the handler to start', [m])
    m.send(signal.SIGHUP)
    wait_until(lambda: RESPAWNED in m.log(), 40, 'the reload', [m])
    start, done = _events(out, 'handler_start'), _events(out, 'handler_done')
    assert len(start) == 1 and [r['pid'] for r in done] == [start[0]['pid']]  # finished, not killed
    assert 'HARAKIRI' not in m.log() and 'SIGKILL' not in m.log()
    assert m.stop(signal.SIGTERM) == 0
