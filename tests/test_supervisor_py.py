"""`_core.Supervisor` through Python, with synthetic events and no process: the decisions the
master carries out (spawn, respawn with back-off, harakiri, shutdown), with the master's own
settings, and the master's executor glue (`Master._apply`) with fork and kill faked."""

from __future__ import annotations

import logging
import os
import signal

import pytest
from uwsgidecorators import _core, master
from uwsgidecorators.master import Master, Settings

EXITED_1 = 1 << 8  # raw os.waitpid statuses
EXITED_0 = 0
KILLED_9 = signal.SIGKILL


def _sup(mercy=30.0):
    return _core.Supervisor(
        [('spooler 1', True), ('worker 1', False)],
        quick_death=master._QUICK_DEATH,
        first_backoff=master._FIRST_BACKOFF,
        max_backoff=master._MAX_BACKOFF,
        mercy=mercy,
    )


def _kinds(actions, kind):
    # the typed actions (`_core.Action.Spawn(slot)`, ...) as the (fields...) of those of `kind`
    cls = getattr(_core.Action, kind.capitalize())
    return [tuple(getattr(a, f) for f in cls.__match_args__) for a in actions if isinstance(a, cls)]


def _started(mercy=30.0):
    sup = _sup(mercy)
    assert _kinds(sup.start(0.0), 'spawn') == [(0,), (1,)]
    assert sup.spawned(0, 100, 0.0) == [] and sup.spawned(1, 101, 0.0) == []
    assert (sup.pid(0), sup.pid(1)) == (100, 101)
    return sup


def test_a_child_that_lived_is_respawned_at_once():
    sup = _started()
    actions = sup.exited(101, KILLED_9, 50.0)
    assert _kinds(actions, 'spawn') == [(1,)]
    [(level, message)] = _kinds(actions, 'log')
    assert level == 'warning' and message.startswith('DAMN ! worker 1 (pid: 101) killed by signal 9')


def test_a_crash_loop_backs_off_up_to_the_masters_cap():
    sup = _started()
    pid, now, delays = 101, 0.0, []
    for _ in range(12):
        actions = sup.exited(pid, EXITED_1, now + 0.1)
        assert _kinds(actions, 'spawn') == []
        assert 'respawning in' in _kinds(actions, 'log')[0][1]
        delays.append(round(sup.next_deadline() - (now + 0.1), 6))
        now = sup.next_deadline()
        assert _kinds(sup.tick(now - 0.01), 'spawn') == []
        assert _kinds(sup.tick(now), 'spawn') == [(1,)]
        pid += 1
        sup.spawned(1, pid, now)
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0] and delays[-1] == master._MAX_BACKOFF
    # a long life resets the count
    assert _kinds(sup.exited(pid, EXITED_1, now + 60), 'spawn') == [(1,)]


def test_a_spooler_exiting_0_recycled_itself():
    sup = _started()
    actions = sup.exited(100, EXITED_0, 0.1)  # quick, but not a crash
    assert _kinds(actions, 'spawn') == [(0,)]
    assert _kinds(actions, 'log') == [('info', 'spooler 1 (pid: 100) recycled itself, respawning')]
    # a worker exiting 0 quickly is a crash
    assert _kinds(sup.exited(101, EXITED_0, 0.1), 'spawn') == []


def test_harakiri_kills_once_and_the_respawn_is_immediate():
    sup = _started()
    actions = sup.harakiri(0, 100, 0.2)
    assert _kinds(actions, 'kill') == [(100,)]
    assert 'HARAKIRI ON SPOOLER 1 (pid: 100)' in _kinds(actions, 'log')[0][1]
    assert sup.harakiri(0, 100, 0.3) == []
    assert sup.harakiri(1, 999, 0.3) == []  # not that slot's pid
    assert _kinds(sup.exited(100, KILLED_9, 0.4), 'spawn') == [(0,)]


def test_stop_terms_waits_for_mercy_kills_then_exits():
    sup = _started(mercy=5.0)
    actions = sup.stop(10.0)
    assert sorted(_kinds(actions, 'term')) == [(100,), (101,)]
    assert 'waiting up to 5 s' in _kinds(actions, 'log')[0][1]
    assert _kinds(sup.exited(101, EXITED_0, 11.0), 'spawn') == []  # nothing respawns now
    assert sup.next_deadline() == 15.0
    assert sup.tick(14.9) == []
    actions = sup.tick(15.0)
    assert _kinds(actions, 'kill') == [(100,)] and not sup.finished
    assert _kinds(sup.exited(100, KILLED_9, 15.1), 'exit') == [(0,)]
    assert sup.finished


def test_a_second_stop_kills_at_once():
    sup = _started()
    sup.stop(1.0)
    assert sorted(_kinds(sup.stop(1.5), 'kill')) == [(100,), (101,)]


def test_a_stop_before_the_start_spawns_nothing():
    sup = _sup()
    assert _kinds(sup.stop(0.0), 'exit') == [(0,)]
    assert sup.start(0.0) == []


# ---------------------------------------------------------------------------------------------
# the master's executor, fork and kill faked


class _FakeMaster(Master):
    def __init__(self, settings):
        super().__init__(settings)
        self.forked: list[int] = []
        self.next_pid = 1000

    def _spawn(self, slot):  # what Master._spawn does around os.fork
        pid, self.next_pid = self.next_pid, self.next_pid + 1
        self.forked.append(slot)
        self.children[pid] = slot
        self._apply(self.sup.spawned(slot, pid, 0.0))


@pytest.fixture
def kills(monkeypatch):
    sent = []
    monkeypatch.setattr(os, 'kill', lambda pid, sig: sent.append((pid, sig)))
    return sent


def test_master_builds_one_slot_per_child_and_carries_out_the_answers(kills, caplog):
    m = _FakeMaster(Settings(spoolers=[b'/a', b'/b'], external={1}, spooler_processes=2, workers=2))
    assert [s.label() for s in m.specs] == ['spooler 1', 'spooler 2', 'worker 1', 'worker 2']
    caplog.set_level(logging.INFO, logger='uwsgidecorators.master')
    m._apply(m.sup.start(0.0))
    assert m.forked == [0, 1, 2, 3] and m.exit_code is None
    # a harakiri kill is carried out as SIGKILL
    m._apply(m.sup.harakiri(2, 1002, 1.0))
    assert kills == [(1002, signal.SIGKILL)]
    assert 'HARAKIRI ON WORKER 1' in caplog.text
    # a stop request: SIGTERM to every child, the signal's name before the supervisor's line
    kills.clear()
    m.stop_requests.append(signal.SIGTERM)
    m._report_stops()
    assert sorted(kills) == [(p, signal.SIGTERM) for p in (1000, 1001, 1002, 1003)]
    assert 'SIGTERM received: stopping 4 child process(es)' in caplog.text
    # a pid the master already reaped is never signalled
    del m.children[1003]
    kills.clear()
    m.stop_requests.append(signal.SIGINT)
    m._report_stops()
    assert sorted(kills) == [(p, signal.SIGKILL) for p in (1000, 1001, 1002)]
    assert 'SIGINT received again' in caplog.text
    for pid in (1000, 1001, 1002, 1003):
        m._apply(m.sup.exited(pid, KILLED_9, 2.0))
    assert m.exit_code == 0
