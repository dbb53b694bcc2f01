"""Shared fixtures: golden vectors, spool dirs, subprocess control, hypothesis profiles."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from interop import procs as _procs

REPO = Path(__file__).resolve().parent.parent

# A suite started in the background by a non-interactive shell (`cmd &`, as some CI runners do)
# inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the tests of
# Ctrl-C would fail for the launcher's sake. Python's own handler here also gives the processes
# the tests start the default disposition back (exec resets a handled signal, not an ignored one).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile('fast', max_examples=25, deadline=None)
    settings.register_profile(
        'ci',
        max_examples=200,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'fast'))
except ImportError:  # hypothesis is a test dependency; only the property tests need it
    pass


def _golden_dir() -> Path:
    """tests/golden (vendored from the team's uwsgi-spec/golden), unless $UWSGI_GOLDEN_DIR names
    another copy (e.g. one just regenerated with produce_with_uwsgi.sh)."""
    env = os.environ.get('UWSGI_GOLDEN_DIR')
    return Path(env).resolve() if env else (REPO / 'tests' / 'golden').resolve()


@pytest.fixture(scope='session')
def golden_dir() -> Path:
    """The golden vectors made by real uWSGI (tests/golden, or $UWSGI_GOLDEN_DIR)."""
    d = _golden_dir()
    if not (d / 'manifest.json').is_file():
        pytest.fail(f'golden vectors not found at {d} (set UWSGI_GOLDEN_DIR)')
    return d


@pytest.fixture(scope='session')
def manifest(golden_dir) -> dict:
    with open(golden_dir / 'manifest.json', encoding='utf-8') as f:
        return json.load(f)


@pytest.fixture(scope='session')
def uwsgi_bin() -> str:
    """Real uWSGI with the python3 plugin. Missing uWSGI is a failure, never a skip."""
    try:
        return _procs.uwsgi_bin()
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture
def spool_dir(tmp_path) -> Path:
    """An empty spool directory, as a realpath (uWSGI compares `spooler` values with realpaths)."""
    d = tmp_path / 'spool'
    d.mkdir()
    return Path(os.path.realpath(d))


@pytest.fixture
def work_dir(tmp_path) -> Path:
    d = tmp_path / 'work'
    d.mkdir()
    return Path(os.path.realpath(d))


@pytest.fixture
def procs(tmp_path, request):
    """Start processes with procs.master([...]), procs.uwsgi([...]), procs.python([...]).

    Every one is stopped by pid at teardown, whatever the test did; its log is printed when the
    test failed.
    """
    group = _procs.ProcGroup(tmp_path / 'logs')
    try:
        yield group
    finally:
        try:
            group.close()
        finally:
            rep = getattr(request.node, 'rep_call', None)
            if rep is not None and rep.failed and group.procs:
                print('\n===== process logs =====\n' + group.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, 'rep_' + rep.when, rep)
    return rep


def pytest_report_header(config):
    try:
        b = _procs.uwsgi_bin()
    except RuntimeError:
        b = 'NOT INSTALLED'
    return 'uwsgi: {}; golden: {}; master: {}'.format(b, _golden_dir(), ' '.join(_procs.master_argv()))
