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


def test_help_says_which_parts_of_the_api_are_not_built(procs):
    m = procs.master(['--help'])
    assert m.wait(20) == 0, m.log()
    text = ' '.join(m.log().split())
    assert 'Not built yet:' in text
    for part in ('@lock', 'uwsgi.lock()', '@mulefunc', 'farms', '@rpc', '@erlang', 'SIGHUP', '--touch-reload'):
        assert part in text, part
