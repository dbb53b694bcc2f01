"""Spooler defects found in trial use (issue 10), in-process: each test failed before its fix.

The real-process cases (harakiri, directory refusal at the master's start) are in
test_fault_spooler.py and test_cli_master.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uwsgi
import uwsgidecorators
from uwsgidecorators import _config, spool, spoolraw

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def unconfigured(monkeypatch):
    for var in (_config.ENV_SPOOLERS, _config.ENV_OPT, _config.ENV_MASTER_PID, _config.ENV_DURABLE):
        monkeypatch.delenv(var, raising=False)
    _config.reset()
    yield
    _config.reset()


@pytest.fixture
def qdir(unconfigured, spool_dir):
    uwsgidecorators.configure(spooler=spool_dir)
    return spool_dir


# -- 8. the empty key -----------------------------------------------------------------------


def test_empty_key_is_refused_and_the_divergence_is_listed(qdir):
    with pytest.raises(ValueError, match='cannot be empty'):
        uwsgi.spool({b'': b'x'})
    assert list(qdir.iterdir()) == []
    compat = (REPO / 'docs' / 'compat.md').read_text()
    spooler_section = compat.split('## Spooler', 1)[1].split('\n## ', 1)[0]
    assert any('empty key' in line and 'deletes it' in line for line in spooler_section.splitlines())


# -- 7. clear errors for a @spoolraw answer that is not an int, and a task that is not a dict ---


@spoolraw
def h_raw_returns_none(arguments):
    return None


@spool
def h_task(arguments):
    return None


def test_spoolraw_returning_none_names_the_function_and_the_rule(qdir):
    h_raw_returns_none({'a': 'b'})
    [path] = uwsgi.spooler_jobs()
    job = uwsgi.spooler_get_task(path)
    with pytest.raises(TypeError) as info:
        uwsgidecorators.manage_spool_request(job)
    msg = str(info.value)
    assert "'h_raw_returns_none' returned None" in msg
    assert 'SPOOL_OK' in msg and 'SPOOL_RETRY' in msg


@pytest.mark.parametrize('bad', ['hello', 5, [1, 2]])
def test_spool_of_a_non_dict_names_the_function_and_the_rule(qdir, bad):
    with pytest.raises(uwsgidecorators.SpoolArgumentsError) as info:
        h_task.spool(bad)
    msg = str(info.value)
    assert 'h_task.spool() takes a dict' in msg and 'pass_arguments=True' in msg
    # code written against uWSGI caught ValueError (str) or TypeError (int)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    assert list(qdir.iterdir()) == []
    # pairs still work, as dict.update takes them in uWSGI's module
    h_task([('k', 'v')])
    assert len(uwsgi.spooler_jobs()) == 1


# -- 6. the "too large" advice is right for each mode ------------------------------------------


@spool(pass_arguments=True)
def h_args(data, **kwargs):
    return None


def test_too_large_advice_in_pass_arguments_mode_does_not_send_to_the_body(qdir):
    with pytest.raises(uwsgidecorators.SpoolTooLargeError) as info:
        h_args('x' * 70000)
    msg = str(info.value)
    assert 'h_args' in msg and 'pass_arguments=True the body does not reach the function' in msg
    assert isinstance(info.value, ValueError)
    assert list(qdir.iterdir()) == []


def test_too_large_advice_in_dict_mode_works_when_followed(qdir):
    with pytest.raises(uwsgidecorators.SpoolTooLargeError, match="'body' key"):
        h_task({'data': 'x' * 70000})
    seen = []
    uwsgidecorators.spooler_functions['h_task'] = lambda arguments: seen.append(arguments)
    try:
        h_task({'name': 'n', 'body': 'x' * 70000})  # the advice
        [path] = uwsgi.spooler_jobs()
        assert uwsgidecorators.manage_spool_request(uwsgi.spooler_get_task(path)) == uwsgi.SPOOL_OK
    finally:
        uwsgidecorators.spooler_functions['h_task'] = h_task.f
    assert seen[0]['body'] == 'x' * 70000 and seen[0]['name'] == 'n'


# -- 4. a task file the spooler's user cannot open is reported once and counted ----------------

NOBODY = 65534

_AS_NOBODY = r'''
import logging, sys, threading
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='%(levelname)s %(message)s')
from uwsgidecorators import _core
from uwsgidecorators._roles.spooler import StopFlag, run_spooler
sp = _core.Spooler(sys.argv[1], frequency=0.2)
for _ in range(6):  # several rescans meet the file again
    assert sp.next_task(0.3) is None
print('UNREADABLE', sp.unreadable, flush=True)
stop = StopFlag()
def end():
    stop.requested = True
    if stop.spooler is not None:
        stop.spooler.wake()
threading.Timer(1.0, end).start()
run_spooler(sys.argv[1], stop=stop, frequency=0.2)
'''


@pytest.fixture
def nobody_dir():
    """A spool dir owned by uid 65534, reachable by it (pytest's tmp_path is root's 0700)."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip('needs root to act as two users')  # the project's CI runs as root
    d = tempfile.mkdtemp(prefix='udspool-')
    os.chown(d, NOBODY, NOBODY)
    os.chmod(d, 0o700)
    try:
        yield Path(os.path.realpath(d))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope='module')
def nobody_python(tmp_path_factory):
    """(interpreter, PYTHONPATH) that uid 65534 can run: a copy of our three packages in a dir it
    can read, and Debian's python3 (this venv's interpreter may live under root's 0700 home)."""
    import shutil
    import tempfile

    import uwsgidecorators as pkg

    if os.geteuid() != 0:
        pytest.skip('needs root to act as two users')
    d = tempfile.mkdtemp(prefix='udpkg-')
    os.chmod(d, 0o755)
    src = Path(pkg.__file__).resolve().parent
    shutil.copytree(src, Path(d) / 'uwsgidecorators', ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copytree(Path(uwsgi.__file__).resolve().parent, Path(d) / 'uwsgi')
    import _uwsgidecorators_runtime as runtime

    shutil.copytree(Path(runtime.__file__).resolve().parent, Path(d) / '_uwsgidecorators_runtime')
    try:
        yield '/usr/bin/python3', d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _as_nobody(py: tuple[str, str], script: str, *args: str) -> str:
    import subprocess

    res = subprocess.run(
        [py[0], '-c', script, *args],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd='/',
        env={'PYTHONPATH': py[1], 'PATH': '/usr/bin:/bin', 'PYTHONDONTWRITEBYTECODE': '1'},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def test_unopenable_task_file_is_logged_once_and_counted(nobody_dir, nobody_python):
    from uwsgidecorators import _core

    path = os.fsdecode(_core.spool_write(str(nobody_dir), [(b'a', b'b')]))  # root's, mode 0600
    out = _as_nobody(nobody_python, _AS_NOBODY, str(nobody_dir))
    lines = [line for line in out.splitlines() if line.startswith('WARNING cannot open task file')]
    assert len(lines) == 2, out  # once per spooler: the Spooler object, then run_spooler's own
    assert path in lines[0] and 'Permission denied' in lines[0] and 'uid 0' in lines[0], lines[0]
    assert 'UNREADABLE 1' in out
    assert '1 task file(s) could not be opened' in out, out
    assert os.path.exists(path)  # left where it is: nothing is lost


# -- 3. an attached process never creates a spool dir; every error names the path and the fix --


def test_configure_with_a_typo_creates_nothing_and_names_the_path(unconfigured, tmp_path):
    typo = tmp_path / 'typo'
    with pytest.raises(uwsgidecorators.SpoolDirectoryError) as info:
        uwsgidecorators.configure(spooler=typo)
    assert not typo.exists()
    msg = str(info.value)
    assert str(typo) in msg and 'does not exist' in msg and '--spooler' in msg
    assert isinstance(info.value, OSError) and info.value.errno == 2


def test_env_typo_names_the_path_at_the_first_enqueue(unconfigured, monkeypatch, tmp_path):
    typo = tmp_path / 'typo'
    monkeypatch.setenv(_config.ENV_SPOOLERS, str(typo))
    _config.reset()
    with pytest.raises(uwsgidecorators.SpoolDirectoryError) as info:
        h_task({'a': 'b'})
    assert str(typo) in str(info.value) and _config.ENV_SPOOLERS in str(info.value)
    assert not typo.exists()


def test_read_only_dir_names_the_path_and_the_fix(unconfigured, nobody_dir, nobody_python):
    # uid 65534 enqueues into a root-owned 0755 dir (root would write anywhere)
    os.chown(nobody_dir, 0, 0)
    os.chmod(nobody_dir, 0o755)
    script = (
        'import os, sys\n'
        'os.environ["UWSGIDECORATORS_SPOOLERS"] = sys.argv[1]\n'
        'import uwsgi\n'
        'try:\n'
        '    uwsgi.spool({b"a": b"b"})\n'
        'except OSError as e:\n'
        '    print("ERR", type(e).__name__, e.errno, e)\n'
    )
    out = _as_nobody(nobody_python, script, str(nobody_dir))
    assert 'ERR SpoolDirectoryError 13' in out and str(nobody_dir) in out and 'not writable' in out, out
    assert list(nobody_dir.iterdir()) == []


def test_a_dir_removed_after_configure_is_named_in_the_write_error(qdir):
    os.rmdir(qdir)
    with pytest.raises(FileNotFoundError) as info:
        uwsgi.spool({b'a': b'b'})
    assert str(qdir) in str(info.value)


# -- 1. spool directory security ---------------------------------------------------------------


@pytest.mark.parametrize('mode', [0o777, 0o1777, 0o703])
def test_master_refuses_a_directory_others_can_write(tmp_path, mode):
    from uwsgidecorators.master import settings_from_options
    from uwsgidecorators.options import UsageError, parse_args

    d = tmp_path / 'open'
    d.mkdir()
    d.chmod(mode)
    with pytest.raises(UsageError) as info:
        settings_from_options(parse_args(['--spooler', str(d)]))
    msg = str(info.value)
    assert str(d) in msg and f'{mode:04o}' in msg and f'chmod o-w {d}' in msg


def test_master_creates_0700_and_takes_trusted_users(tmp_path):
    from uwsgidecorators.master import settings_from_options
    from uwsgidecorators.options import UsageError, parse_args

    argv = ['--spooler', str(tmp_path / 'new'), '--spooler-trusted-user', 'nobody']
    s = settings_from_options(parse_args([*argv, '--spooler-trusted-user', '1234']))
    assert (tmp_path / 'new').stat().st_mode & 0o777 == 0o700
    assert s.trusted_uids == [NOBODY, 1234]
    with pytest.raises(UsageError, match='no-such-user-here: no such user'):
        settings_from_options(parse_args([*argv, '--spooler-trusted-user', 'no-such-user-here']))
    # group-writable stays allowed: a group shared with the web server's user
    (tmp_path / 'new').chmod(0o770)
    settings_from_options(parse_args(argv))


def test_spooler_and_writers_refuse_a_directory_others_can_write(unconfigured, tmp_path):
    from uwsgidecorators import _core

    d = tmp_path / 'open'
    d.mkdir()
    d.chmod(0o1777)
    with pytest.raises(PermissionError, match='chmod o-w'):
        _core.Spooler(str(d))
    with pytest.raises(uwsgidecorators.SpoolDirectoryError, match='chmod o-w'):
        uwsgidecorators.configure(spooler=d)


def test_a_task_file_of_another_user_is_quarantined_unless_trusted(unconfigured, spool_dir, caplog):
    import logging

    from uwsgidecorators import _core

    if os.geteuid() != 0:
        pytest.skip('needs root to chown')
    path = os.fsdecode(_core.spool_write(str(spool_dir), [(b'n', b'theirs')]))
    os.chown(path, NOBODY, NOBODY)
    sp = _core.Spooler(str(spool_dir), trusted_uids=[NOBODY])
    task = sp.next_task(1.0)
    assert task is not None and task.vars == [(b'n', b'theirs')]
    task.release()
    del sp
    sp = _core.Spooler(str(spool_dir))
    with caplog.at_level(logging.WARNING, logger='uwsgidecorators.spooler'):
        assert sp.next_task(0.5) is None
    assert 'quarantined' in caplog.text and f'--spooler-trusted-user {NOBODY}' in caplog.text
    assert not os.path.exists(path)
    q = spool_dir / 'quarantine'
    assert 'uid 65534' in (q / (os.path.basename(path) + '.reason')).read_text()
