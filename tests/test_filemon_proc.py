"""File monitors under our master, as real processes: @filemon / uwsgi.add_file_monitor.

The handler runs after a change; how fast is a benchmark's business (bench/lat_filemon.py), here
only the behaviour is asserted. Every wait is bounded; every process is stopped by pid at
teardown (the `procs` fixture).
"""

from __future__ import annotations

import os
import signal
import time

from interop import sigapp
from interop.procs import wait_until

_events = sigapp.events


def _start(procs, tmp_path, body, watched, *, workers=1):
    return sigapp.start(procs, tmp_path, body, workers=workers, env={'WATCHED': watched}, name='montasks')


def _ready(m, workers=1):
    sigapp.workers_up(m, workers)


def _settle(out, event, seconds=0.3):
    """Wait until no new run came for `seconds` (bursts of events are coalesced, not counted)."""
    end = time.monotonic() + 10
    last = -1
    while time.monotonic() < end:
        n = len(_events(out, event))
        if n == last:
            return n
        last = n
        time.sleep(seconds)
    return last


def test_handler_runs_after_a_write_to_a_file(procs, tmp_path):
    watched = tmp_path / 'config.txt'
    watched.write_text('v1\n')
    m, out = _start(
        procs,
        tmp_path,
        """
        @filemon(WATCHED)
        def changed(num):
            rec('changed', num=num)
        """,
        watched,
    )
    _ready(m)
    time.sleep(0.2)
    assert _events(out, 'changed') == []  # nothing happened yet
    with open(watched, 'a') as f:
        f.write('v2\n')
    wait_until(lambda: _events(out, 'changed'), 20, 'the handler after a write', [m])
    before = _settle(out, 'changed')
    os.chmod(watched, 0o600)  # attribute changes count too (IN_ATTRIB)
    wait_until(lambda: len(_events(out, 'changed')) > before, 20, 'the handler after chmod', [m])
    assert {r['worker'] for r in _events(out, 'changed')} == {1}
    assert m.stop(signal.SIGTERM) == 0


def test_replace_by_rename_keeps_being_watched(procs, tmp_path):
    watched = tmp_path / 'settings.json'
    watched.write_text('{}')
    m, out = _start(
        procs,
        tmp_path,
        """
        @filemon(WATCHED)
        def changed(num):
            rec('changed')
        """,
        watched,
    )
    _ready(m)
    for round_ in range(3):
        before = _settle(out, 'changed')
        tmp = tmp_path / f'settings.json.tmp{round_}'
        tmp.write_text(f'{{"round": {round_}}}')
        os.replace(tmp, watched)  # what editors and config managers do
        wait_until(lambda n=before: len(_events(out, 'changed')) > n, 20, f'the handler after rename {round_}', [m])
    # and a plain write to the new file still counts
    before = _settle(out, 'changed')
    with open(watched, 'a') as f:
        f.write(' ')
    wait_until(lambda: len(_events(out, 'changed')) > before, 20, 'the handler after a write to the new file', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_directory_direct_children_and_recursive_trees(procs, tmp_path):
    flat = tmp_path / 'flat'
    (flat / 'sub').mkdir(parents=True)
    tree = tmp_path / 'tree'
    (tree / 'a' / 'b').mkdir(parents=True)
    m, out = _start(
        procs,
        tmp_path,
        """
        @filemon(os.path.join(WATCHED, 'flat'))
        def flat(num):
            rec('flat')

        @filemon(os.path.join(WATCHED, 'tree'), recursive=True, target='workers')
        def tree(num):
            rec('tree')
        """,
        tmp_path,
        workers=2,
    )
    _ready(m, 2)
    # a direct child of a non-recursive directory
    (flat / 'new.txt').write_text('x')
    wait_until(lambda: _events(out, 'flat'), 20, 'the flat directory handler', [m])
    n_flat = _settle(out, 'flat')
    # deep in the recursive tree, also in a directory created after registration; in every worker
    (tree / 'a' / 'b' / 'deep.txt').write_text('x')
    wait_until(lambda: len(_events(out, 'tree')) >= 2, 20, 'the recursive handler in both workers', [m])
    n_tree = _settle(out, 'tree')
    (tree / 'a' / 'later').mkdir()
    _settle(out, 'tree')
    n_tree = len(_events(out, 'tree'))
    (tree / 'a' / 'later' / 'x.txt').write_text('x')
    wait_until(lambda: len(_events(out, 'tree')) > n_tree, 20, 'a directory created later', [m])
    # a change inside a subdirectory of the flat (non-recursive) one is not its business
    (flat / 'sub' / 'inner.txt').write_text('x')
    time.sleep(0.5)
    assert len(_events(out, 'flat')) == n_flat
    assert {r['worker'] for r in _events(out, 'tree')} == {1, 2}
    assert m.stop(signal.SIGTERM) == 0


def test_missing_path_raises_at_registration(procs, tmp_path):
    missing = tmp_path / 'not-there.txt'
    m, out = _start(
        procs,
        tmp_path,
        """
        from uwsgidecorators.exceptions import FileMonitorPathError
        try:
            uwsgi.add_file_monitor(10, WATCHED)
        except FileMonitorPathError as exc:
            rec('refused', why=str(exc), value_error=isinstance(exc, ValueError),
                not_found=isinstance(exc, FileNotFoundError))

        @filemon(WATCHED)
        def never(num):
            pass
        """,
        missing,
    )
    assert m.wait(20) == 1  # the decorator's error stops the import, so the master
    refused = _events(out, 'refused')[0]
    assert refused['value_error'] and refused['not_found']
    assert 'unable to add file monitor' in refused['why'] and 'not-there.txt' in refused['why']
    assert 'import failed' in m.log() and 'FileMonitorPathError' in m.log()


def test_a_worker_adds_file_monitors_at_run_time(procs, tmp_path):
    # uwsgi.add_file_monitor in a worker: the path is checked there (a missing one raises at
    # once), made absolute (the master runs elsewhere) and sent to the master.
    (tmp_path / 'conf' / 'deep').mkdir(parents=True)
    (tmp_path / 'conf' / 'app.ini').write_text('[app]\n')
    m, out = _start(
        procs,
        tmp_path,
        """
        from uwsgidecorators import postfork, signal
        from uwsgidecorators.exceptions import FileMonitorPathError

        @signal(80)
        def ini_changed(num):
            rec('app.ini', num=num)

        @signal(81, target='workers')
        def tree_changed(num):
            rec('tree', num=num)

        @postfork
        def watch():
            if uwsgi.worker_id() != 1:
                return
            os.chdir(WATCHED)
            try:
                uwsgi.add_file_monitor(82, 'missing.ini')
            except FileMonitorPathError as exc:
                rec('refused', why=str(exc))
            uwsgi.add_file_monitor(80, os.path.join('conf', 'app.ini'))  # relative to this worker
            uwsgi.add_file_monitor(81, b'conf', recursive=True)
            rec('added')
        """,
        tmp_path,
        workers=2,
    )
    _ready(m, 2)
    wait_until(lambda: _events(out, 'added'), 20, 'worker 1 to add its monitors', [m])
    assert 'missing.ini' in _events(out, 'refused')[0]['why']

    def poke(path):
        # The master adds the monitor at its next turn after the datagram: change the file
        # until the handler runs rather than guess when that was.
        def changed_and_seen():
            with open(path, 'a') as f:
                f.write('x = 1\n')
            return _events(out, path.name)

        return changed_and_seen

    wait_until(poke(tmp_path / 'conf' / 'app.ini'), 20, 'the file monitor added by worker 1', [m], interval=0.1)
    (tmp_path / 'conf' / 'deep' / 'tree').write_text('')
    wait_until(
        lambda: poke(tmp_path / 'conf' / 'deep' / 'tree')() and {r['worker'] for r in _events(out, 'tree')} == {1, 2},
        20,
        'the recursive monitor, in both workers',
        [m],
        interval=0.1,
    )
    assert 'control datagram refused' not in m.log()
    assert m.stop(signal.SIGTERM) == 0


def _append(path, n=1):
    """n separate writes: one IN_MODIFY each (open and close are not in the watched events)."""
    with open(path, 'a') as f:
        for _ in range(n):
            f.write('x\n')
            f.flush()


def test_any_worker_target_runs_once_per_event_with_two_workers(procs, tmp_path):
    # Both workers read the monitor's inotify instance themselves (one hop); each read takes what
    # is queued, so one event runs the handler once, in one worker, never in both.
    watched = tmp_path / 'any.txt'
    watched.write_text('')
    m, out = _start(
        procs,
        tmp_path,
        """
        @filemon(WATCHED, target='worker')
        def changed(num):
            rec('changed')
        """,
        watched,
        workers=2,
    )
    _ready(m, 2)
    time.sleep(0.3)
    for i in range(1, 16):
        _append(watched)
        wait_until(lambda i=i: len(_events(out, 'changed')) >= i, 20, f'the handler after write {i}', [m])
        assert _settle(out, 'changed', 0.15) == i, f'write {i} ran the handler more than once'
    assert {r['worker'] for r in _events(out, 'changed')} <= {1, 2}
    assert 'not delivered' not in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_rename_survival_when_the_other_worker_reads_next(procs, tmp_path):
    # Whichever worker reads the rename re-watches the new file on the shared instance; the other
    # worker learns the new watch when it first reads one of its events, so no write is missed.
    watched = tmp_path / 'shared.conf'
    watched.write_text('a')
    m, out = _start(
        procs,
        tmp_path,
        """
        @filemon(WATCHED)
        def changed(num):
            rec('changed')
            time.sleep(0.05)  # keep this worker busy: the next event goes to the other one
        """,
        watched,
        workers=2,
    )
    _ready(m, 2)
    time.sleep(0.3)
    for round_ in range(4):
        before = _settle(out, 'changed', 0.2)
        tmp = tmp_path / f'shared.conf.{round_}'
        tmp.write_text(str(round_))
        os.replace(tmp, watched)
        wait_until(lambda n=before: len(_events(out, 'changed')) > n, 20, f'the handler after rename {round_}', [m])
        before = _settle(out, 'changed', 0.2)
        for k in range(4):
            _append(watched)
            wait_until(
                lambda n=before + k + 1: len(_events(out, 'changed')) >= n, 20, f'write {k} after rename {round_}', [m]
            )
    assert {r['worker'] for r in _events(out, 'changed')} == {1, 2}
    assert m.stop(signal.SIGTERM) == 0


def test_one_worker_target_survives_a_respawn_and_a_missing_worker_is_logged(procs, tmp_path):
    # worker2 reads its monitor itself; killed after a rename, its successor (forked from the
    # master, which never saw that rename) still follows the new file. A monitor for worker3,
    # which does not exist, is read by the master and logged as not delivered.
    watched = tmp_path / 'w2.conf'
    watched.write_text('a')
    (tmp_path / 'w2.conf.w3').write_text('a')
    m, out = _start(
        procs,
        tmp_path,
        """
        @filemon(WATCHED, target='worker2')
        def changed(num):
            rec('changed')

        @filemon(WATCHED + '.w3', target='worker3')
        def never(num):
            rec('never')
        """,
        watched,
        workers=2,
    )
    _ready(m, 2)
    tmp = tmp_path / 'w2.conf.new'
    tmp.write_text('b')
    os.replace(tmp, watched)
    wait_until(lambda: _events(out, 'changed'), 20, 'the handler after the rename', [m])
    before = _settle(out, 'changed', 0.2)
    pid = _events(out, 'changed')[0]['pid']
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: m.log().count('spawned uWSGI worker 2 ') >= 2, 30, 'worker 2 respawned', [m])

    def write_and_seen():
        _append(watched)
        return [r for r in _events(out, 'changed') if r['pid'] != pid]

    wait_until(write_and_seen, 20, 'the respawned worker 2 after a write to the renamed file', [m], interval=0.3)
    assert all(r['worker'] == 2 for r in _events(out, 'changed'))
    assert len(_events(out, 'changed')) > before
    with open(str(watched) + '.w3', 'a') as f:
        f.write('x')
    wait_until(lambda: 'not delivered' in m.log(), 20, 'the log line for worker3', [m])
    assert _events(out, 'never') == []
    assert m.stop(signal.SIGTERM) == 0


def test_a_postfork_signal_wait_reads_the_monitors_its_worker_reads(procs, tmp_path):
    # A monitor aimed at worker 1 is read by worker 1 itself (the master leaves it alone while
    # worker 1 lives): a uwsgi.signal_wait in its @postfork function, before the worker loop
    # runs, must read it too, or the wait would never end.
    watched = tmp_path / 'postfork.txt'
    watched.write_text('')
    m, out = _start(
        procs,
        tmp_path,
        """
        @filemon(WATCHED, target='worker1')
        def changed(num):
            rec('changed', num=num)

        @postfork
        def wait_in_worker_one():
            if uwsgi.worker_id() != 1:
                return
            rec('ready')
            uwsgi.signal_wait()
            rec('waited', received=uwsgi.signal_received())
        """,
        watched,
    )
    wait_until(lambda: _events(out, 'ready'), 20, 'the wait', [m])
    time.sleep(0.3)
    _append(watched)
    waited = wait_until(lambda: _events(out, 'waited'), 20, 'the end of the wait', [m])
    changed = _events(out, 'changed')
    assert [e['num'] for e in changed] == [waited[0]['received']]
    assert m.stop(signal.SIGTERM) == 0
