"""Operating the `uwsgidecorators` master: group signals, privileges, pidfiles, logs, the
control socket's place, the command line's own answers (usage, version, unknown options).

Every master runs as a real process started through the `procs` fixture (stopped by pid at
teardown) and every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest
from interop.procs import wait_until

POSTFORK = textwrap.dedent(
    """
    import os
    from uwsgidecorators import postfork

    @postfork
    def hook():
        fd = os.open(os.environ['PF_OUT'], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, b'%d\\n' % os.getpid())
        finally:
            os.close(fd)
    """
)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def test_a_stop_sent_to_the_whole_process_group_respawns_nothing(procs, tmp_path):
    """Ctrl-C in a terminal and systemd's KillMode=control-group signal the master and its
    children at once. The children's exits must not be taken for deaths: before, the master
    reaped them before it looked at its own stop request, respawned every worker ("DAMN !
    worker 1 ... respawning") and ran the @postfork hooks again (2 of 6 tries)."""
    hook = tmp_path / 'pf.py'
    hook.write_text(POSTFORK)
    for round_ in range(6):
        out = tmp_path / f'pf{round_}.txt'
        sig = signal.SIGINT if round_ % 2 == 0 else signal.SIGTERM
        m = procs.master(['--import', hook, '--processes', '4'], env={'PF_OUT': out})
        wait_until(lambda: len(_lines(out)) == 4, 20, 'four postfork hooks', [m])
        os.killpg(m.pid, sig)  # the master leads its own session: this is its whole group
        assert m.wait(30) == 0, m.log()
        log = m.log()
        assert 'respawning' not in log, log
        assert len(_lines(out)) == 4, (_lines(out), log)
        assert f'{signal.Signals(sig).name} received' in log


def test_no_arguments_prints_usage_and_exits_2(procs):
    """Before, a bare `uwsgidecorators` started a master with nothing to do that ran until killed."""
    m = procs.master([])
    assert m.wait(20) == 2, m.log()
    log = m.log()
    assert log.startswith('usage: uwsgidecorators')
    assert 'no options given' in log
    assert 'starting' not in log


def test_version_names_uwsgi_s_version_then_ours(procs):
    """The first word is `uwsgi.version`, as uWSGI's --version prints it (2.0.21-debian for
    Debian's build); the package's own version follows. Before, only the first word."""
    import importlib.metadata

    import uwsgi

    m = procs.master(['--version'])
    assert m.wait(20) == 0, m.log()
    line = m.log().strip()
    ours = importlib.metadata.version('uwsgidecorators-rs')
    assert line == f'{uwsgi.version.decode()} (uwsgidecorators-rs {ours})'
    first = line.split()[0]
    assert first.split('-')[0] == '2.0.21'


def test_help_lists_no_part_of_the_api_as_not_built(procs):
    m = procs.master(['--help'])
    assert m.wait(20) == 0, m.log()
    text = ' '.join(m.log().split())
    # locks (issue 8), mules and farms (issue 12), RPC, Erlang and reload are all built: the help
    # lists their options and no "Not built yet" section
    assert 'Not built yet' not in text and 'not built' not in text
    for option in ('--locks N', '--mules N', '--farm NAME', '--socket ADDR', '--erlang NAME'):
        assert option in text, option


PRINTER = textwrap.dedent(
    """
    import sys
    from uwsgidecorators import postfork

    @postfork
    def hello():
        print('hello from a child', flush=True)
        sys.stderr.write('child stderr line\\n')
        sys.stderr.flush()
    """
)

CTIME = r'[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} - '


def test_pidfiles_logto_and_log_date(procs, tmp_path):
    """--pidfile (before privileges drop) and --pidfile2 (after) hold the master's pid; --vacuum
    removes them at exit; --logto appends the output of the master and every child; --log-date
    starts each log line with uWSGI's ctime date. Before, all four were ignored with a notice."""
    import re

    mod = tmp_path / 'printer.py'
    mod.write_text(PRINTER)
    logfile = tmp_path / 'master.log'
    logfile.write_text('an older line\n')
    pid1, pid2 = tmp_path / 'm.pid', tmp_path / 'm2.pid'
    m = procs.master(
        ['--import', mod, '--processes', '2', '--pidfile', pid1, '--pidfile2', pid2, '--vacuum',
         '--logto', logfile, '--log-date'],
    )
    wait_until(lambda: logfile.read_text().count('hello from a child') == 2, 20, 'both children to print', [m])
    assert pid1.read_text() == f'{m.pid}\n'
    assert pid2.read_text() == f'{m.pid}\n'
    assert m.stop(signal.SIGTERM) == 0
    text = logfile.read_text()
    lines = text.splitlines()
    assert lines[0] == 'an older line'  # appended, not truncated
    assert text.count('child stderr line') == 2
    master_lines = [ln for ln in lines if 'uwsgidecorators master' in ln or 'spawned uWSGI worker' in ln]
    assert len(master_lines) == 3, text
    assert all(re.match(CTIME, ln) for ln in master_lines), master_lines
    assert re.match(CTIME + r'goodbye to uwsgidecorators', lines[-1]) or 'VACUUM' in lines[-1], lines[-3:]
    assert 'VACUUM: pidfile removed.' in text and 'VACUUM: pidfile2 removed.' in text
    assert not pid1.exists() and not pid2.exists()
    assert 'not served' not in text and 'not implemented' not in text
    assert 'hello from a child' not in m.log()  # nothing went to the original stdout


def test_log_date_takes_a_strftime_format_and_pidfiles_stay_without_vacuum(procs, tmp_path):
    import re

    logfile = tmp_path / 'master.log'
    pidfile = tmp_path / 'm.pid'
    m = procs.master(['--processes', '1', '--pidfile', pidfile, '--logto2', logfile, '--log-date=[%Y/%m/%d %H:%M:%S]'])
    wait_until(lambda: logfile.exists() and 'spawned uWSGI worker 1' in logfile.read_text(), 20, 'the worker', [m])
    assert m.stop(signal.SIGTERM) == 0
    text = logfile.read_text()
    assert re.search(r'^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] - spawned uWSGI worker 1 \(pid: \d+\)$', text, re.M), text
    assert pidfile.read_text() == f'{m.pid}\n'  # uWSGI removes it only with --vacuum
    # --logto2 opens after the pidfile is written: that line went to the original output
    assert 'writing pidfile to' in m.log()


ID_TASKS = textwrap.dedent(
    """
    import os
    from uwsgidecorators import postfork, spool

    OUT = os.environ['ID_OUT']

    def record(line):
        fd = os.open(OUT, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, (line + '\\n').encode())
        finally:
            os.close(fd)

    @postfork
    def ids():
        record('postfork %d' % os.getpid())

    @spool(pass_arguments=True)
    def whoami(tag):
        record('task %s uid=%d gid=%d' % (tag, os.getuid(), os.getgid()))

    # imported by the master once its privileges are dropped: the task file is the new user's
    whoami.spool(tag='from-master')
    """
)


def _ids(pid: int) -> dict[str, list[int]]:
    out = {}
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        key, _, value = line.partition(':')
        if key in ('Uid', 'Gid', 'Groups'):
            out[key] = [int(v) for v in value.split()]
    return out


@pytest.fixture
def world_dir():
    """A directory that user nobody can traverse (pytest's tmp_path sits under 0700 dirs)."""
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix='uwsgidecorators-ops-', dir='/tmp')
    os.chmod(d, 0o755)
    try:
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='dropping privileges needs root')


def _nobody() -> tuple[int, int]:
    import grp
    import pwd

    try:
        return pwd.getpwnam('nobody').pw_uid, grp.getgrnam('nogroup').gr_gid
    except KeyError:
        pytest.skip('no user nobody / group nogroup here')


@needs_root
def test_uid_and_gid_drop_privileges_in_the_master_and_every_child(procs, world_dir):
    """Before, `--uid nobody --gid nogroup` was "not served": every process ran on as root."""
    uid, gid = _nobody()
    (world_dir / 'idtasks.py').write_text(ID_TASKS)
    out = world_dir / 'out.txt'
    out.touch()
    os.chmod(out, 0o666)
    spool = world_dir / 'spool'  # created by the master, as root, then given to nobody
    m = procs.master(
        ['--uid', 'nobody', '--gid', 'nogroup', '--spooler', spool, '--import', world_dir / 'idtasks.py',
         '--processes', '2', '--pidfile', world_dir / 'm.pid'],
        env={'ID_OUT': out},
        cwd=world_dir,
    )
    wait_until(lambda: _lines(out).count('postfork') == 3, 20, 'three postfork hooks', [m])
    pids = [m.pid, *m.children()]
    assert len(pids) == 4, pids
    for pid in pids:
        ids = _ids(pid)
        assert ids['Uid'] == [uid] * 4, (pid, ids)
        assert ids['Gid'] == [gid] * 4, (pid, ids)
        assert 0 not in ids['Groups'], (pid, ids)  # root's supplementary groups are gone
    st = spool.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, 0o700)
    assert (world_dir / 'm.pid').read_text() == f'{m.pid}\n'  # written before the drop
    wait_until(lambda: 'task from-master' in out.read_text(), 20, 'the task', [m])
    assert f'task from-master uid={uid} gid={gid}' in out.read_text()
    assert f'setgid() to {gid}' in m.log() and f'setuid() to {uid}' in m.log()
    assert m.stop(signal.SIGTERM) == 0
    assert 'not served' not in m.log()


def test_an_unknown_user_or_group_is_an_error(procs, tmp_path):
    for args, what in ((['--uid', 'no-such-user-xyz'], 'user no-such-user-xyz not found'),
                       (['--gid', 'no-such-group-xyz'], 'group no-such-group-xyz not found')):
        m = procs.master([*args, '--processes', '1'])
        assert m.wait(20) not in (0, None), m.log()
        assert what in m.log()
        assert 'spawned' not in m.log()


@needs_root
def test_a_spool_dir_the_new_user_cannot_write_stops_the_master(procs, world_dir):
    spool = world_dir / 'rootspool'
    spool.mkdir(mode=0o750)  # root's, not the master's to give away
    m = procs.master(['--uid', 'nobody', '--gid', 'nogroup', '--spooler', spool, '--processes', '1'], cwd=world_dir)
    assert m.wait(20) == 1, m.log()
    assert f'spooler directory {spool} is not readable and writable by uid' in m.log()
    assert 'spawned' not in m.log()


@needs_root
def test_uid_alone_also_takes_the_user_s_primary_group(procs, world_dir):
    uid, gid = _nobody()
    m = procs.master(['--uid', str(uid), '--processes', '1'], cwd=world_dir)
    wait_until(lambda: m.children(), 20, 'the worker', [m])
    wait_until(lambda: 'spawned uWSGI worker 1' in m.log(), 20, 'the worker', [m])
    for pid in [m.pid, *m.children()]:
        ids = _ids(pid)
        assert ids['Uid'] == [uid] * 4 and ids['Gid'] == [gid] * 4 and 0 not in ids['Groups'], (pid, ids)
    assert m.stop(signal.SIGTERM) == 0


SIG_TASKS = textwrap.dedent(
    """
    import os
    from uwsgidecorators import signal

    @signal(17, target='workers')
    def seventeen(num):
        fd = os.open(os.environ['SIG_OUT'], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, b'signal %d in %d\\n' % (num, os.getpid()))
        finally:
            os.close(fd)
    """
)

RAISE = (
    'import sys, uwsgi, uwsgidecorators\n'
    'if len(sys.argv) > 1: uwsgidecorators.configure(control=sys.argv[1])\n'
    'uwsgi.signal(17)\n'
)


def _attached(procs, env, *args):
    """A process the master did not start: it knows the spool dir (or the path given), nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('UWSGIDECORATORS_')} | env
    p = procs.start([__import__('sys').executable, '-c', RAISE, *map(str, args)], name='attached', env=env)
    return p.wait(30), p.log()


def test_the_control_socket_has_a_stable_place_attached_processes_find(procs, tmp_path, spool_dir):
    """Before, the control socket was under a random temporary directory named only in the
    master's log. Now it is `<first spool dir>/.uwsgidecorators/control` (dir 0700, socket 0600),
    where a process that was only given the spool dir finds it, or where --control-socket says."""
    import stat

    (tmp_path / 'sigtasks.py').write_text(SIG_TASKS)
    out = tmp_path / 'sig.txt'
    m = procs.master(['--spooler', spool_dir, '--import', tmp_path / 'sigtasks.py', '--processes', '1'],
                     env={'SIG_OUT': out})
    wait_until(lambda: 'spawned uWSGI worker 1' in m.log(), 20, 'the worker', [m])
    control = spool_dir / '.uwsgidecorators' / 'control'
    assert stat.S_ISSOCK(control.lstat().st_mode) and control.lstat().st_mode & 0o777 == 0o600
    assert control.parent.stat().st_mode & 0o777 == 0o700
    assert f'signal control socket: {control}' in m.log()
    rc, log = _attached(procs, {'UWSGIDECORATORS_SPOOLERS': str(spool_dir)})
    assert rc == 0, log
    wait_until(lambda: 'signal 17' in (out.read_text() if out.exists() else ''), 20, 'the handler', [m])
    assert m.stop(signal.SIGTERM) == 0
    assert not control.parent.exists()  # the spool dir is left as it was found

    # --control-socket, here from an ini file; the attached process names it in configure()
    ini = tmp_path / 'app.ini'
    place = tmp_path / 'run' / 'ctl.sock'
    ini.write_text(f'[uwsgi]\nspooler = {spool_dir}\nimport = {tmp_path / "sigtasks.py"}\nprocesses = 1\n'
                   f'control-socket = {place}\n')
    m = procs.master(['--ini', ini], env={'SIG_OUT': out})
    wait_until(lambda: 'spawned uWSGI worker 1' in m.log(), 20, 'the worker', [m])
    assert stat.S_ISSOCK(place.lstat().st_mode) and place.lstat().st_mode & 0o777 == 0o600
    assert place.parent.stat().st_mode & 0o777 == 0o700
    rc, log = _attached(procs, {}, place)
    assert rc == 0, log
    wait_until(lambda: out.read_text().count('signal 17') == 2, 20, 'the handler', [m])
    rc, log = _attached(procs, {'UWSGIDECORATORS_CONTROL': str(place)})
    assert rc == 0, log
    wait_until(lambda: out.read_text().count('signal 17') == 3, 20, 'the handler', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_a_killed_master_s_socket_does_not_stop_a_restart_and_a_live_one_refuses_a_second(procs, spool_dir):
    m = procs.master(['--spooler', spool_dir, '--processes', '1'])
    wait_until(lambda: 'spawned uWSGI worker 1' in m.log(), 20, 'the worker', [m])
    control = spool_dir / '.uwsgidecorators' / 'control'
    second = procs.master(['--spooler', spool_dir, '--processes', '1'])
    assert second.wait(20) == 1, second.log()
    assert f'another uwsgidecorators master (pid {m.pid}) is running with the control socket {control}' in second.log()
    assert 'spawned' not in second.log()
    assert m.alive() and control.exists()

    m.children()
    m.send(signal.SIGKILL)
    m.wait(20)
    m.kill_leftovers()
    assert control.exists()  # left behind
    third = procs.master(['--spooler', spool_dir, '--processes', '1'])
    wait_until(lambda: 'spawned uWSGI worker 1' in third.log(), 20, 'the restarted master', [third])
    rc, log = _attached(procs, {'UWSGIDECORATORS_SPOOLERS': str(spool_dir)})
    assert rc == 0, log  # it reaches the new master
    assert third.stop(signal.SIGTERM) == 0


def test_a_control_socket_path_that_is_not_a_socket_is_never_removed(procs, tmp_path):
    precious = tmp_path / 'precious'
    precious.write_text('keep me')
    m = procs.master(['--processes', '1', '--control-socket', precious])
    assert m.wait(20) == 1, m.log()
    assert 'is not a socket' in m.log()
    assert precious.read_text() == 'keep me'


def test_a_typo_in_an_ini_file_stops_the_master_before_it_starts(procs, tmp_path, spool_dir):
    ini = tmp_path / 'app.ini'
    ini.write_text(f'[uwsgi]\nspooler = {spool_dir}\nimprt = tasks\n')
    m = procs.master(['--ini', ini])
    assert m.wait(20) == 2, m.log()
    assert 'error: unknown option --imprt' in m.log() and 'did you mean --import?' in m.log()
    assert 'starting' not in m.log()


SLOW_IMPORT = textwrap.dedent(
    """
    import os, time
    from uwsgidecorators import postfork

    with open(os.environ['IMPORT_OUT'], 'a') as f:
        f.write('importing\\n')
    time.sleep(1.5)

    @postfork
    def hook():
        with open(os.environ['IMPORT_OUT'], 'a') as f:
            f.write('forked\\n')
    """
)


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_the_task_modules_import_ends_the_master_cleanly(procs, tmp_path, sig):
    """A service manager may stop the master while a slow task module (Django) imports. Before,
    the signal's default action killed the master there (exit -15 for SIGTERM, a traceback for
    SIGINT); now the stop is recorded, the import finishes, nothing is forked and it exits 0."""
    mod = tmp_path / 'slowmod.py'
    mod.write_text(SLOW_IMPORT)
    out = tmp_path / 'import.txt'
    m = procs.master(['--import', mod, '--processes', '2'], env={'IMPORT_OUT': out})
    wait_until(lambda: 'importing' in _lines(out), 20, 'the slow import to start', [m])
    os.kill(m.pid, sig)
    assert m.wait(30) == 0, m.log()
    assert 'forked' not in _lines(out), m.log()
    assert 'respawning' not in m.log()


def test_a_spool_dir_too_deep_for_a_unix_socket_path_gets_a_short_derived_control_place(procs, tmp_path):
    """A Unix socket path holds at most 107 bytes. Before, a master whose first spool dir was
    deep (a Django project under pytest's tmp dir: 120 bytes) stopped at start ('path must be
    shorter than SUN_LEN'). Now the default place is /tmp/uwsgidecorators-<hash of the spool
    dir>/control, which an attached process that knows the spool dir derives alike."""
    import stat

    from _uwsgidecorators_runtime.signals import default_control_path

    deep = tmp_path / ('d' * 60) / ('e' * 60) / 'spool'
    deep.mkdir(parents=True, mode=0o700)
    (tmp_path / 'sigtasks.py').write_text(SIG_TASKS)
    out = tmp_path / 'sig.txt'
    m = procs.master(['--spooler', deep, '--import', tmp_path / 'sigtasks.py', '--processes', '1'],
                     env={'SIG_OUT': out})
    wait_until(lambda: 'spawned uWSGI worker 1' in m.log(), 20, 'the worker', [m])
    control = Path(default_control_path(str(deep)))
    assert str(control).startswith('/tmp/uwsgidecorators-'), control
    assert stat.S_ISSOCK(control.lstat().st_mode) and control.parent.stat().st_mode & 0o777 == 0o700
    rc, log = _attached(procs, {'UWSGIDECORATORS_SPOOLERS': str(deep)})
    assert rc == 0, log
    wait_until(lambda: 'signal 17' in (out.read_text() if out.exists() else ''), 20, 'the handler', [m])
    assert m.stop(signal.SIGTERM) == 0
    assert not control.parent.exists()
