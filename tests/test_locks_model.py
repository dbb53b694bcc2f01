"""The lock table against a model, under random take / release / probe / hand-over / kill -9
sequences run by real processes that map one region file (as attached processes do).

Each process is a small Python loop that reads commands on stdin and answers on stdout; the
model says what every answer must be, including which dead pid a recovery names.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from uwsgidecorators import _config, _core

NPROCS = 3
NLOCKS = 2

CHILD = textwrap.dedent(
    """
    import logging, re, sys, uwsgi
    recovered = []

    class Catch(logging.Handler):
        def emit(self, record):
            m = re.search(r'holder \\((?:pid (\\d+)|a process)\\) died', record.getMessage())
            recovered.append(m.group(1) or '0')

    logging.getLogger('uwsgidecorators.lock').addHandler(Catch())
    print('ready', flush=True)
    for line in sys.stdin:
        op, n = line.split()
        try:
            if op == 'lock':
                out = uwsgi.lock(int(n))
            elif op == 'unlock':
                out = uwsgi.unlock(int(n))
            else:
                out = uwsgi.is_locked(int(n))
            answer = f'ok {out}'
        except (ValueError, RuntimeError) as e:
            answer = f'err {type(e).__name__}'
        if recovered:
            answer += ' recovered=' + recovered.pop()
        print(answer, flush=True)
    """
)


class Child:
    def __init__(self, region: Path) -> None:
        env = dict(os.environ)
        for k in (_config.ENV_CONTROL, _config.ENV_SPOOLERS, _config.ENV_MASTER_PID):
            env.pop(k, None)
        env[_config.ENV_REGION] = str(region)
        self.p = subprocess.Popen(
            [sys.executable, '-c', CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.read() == 'ready'

    def send(self, op: str, n: int) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(f'{op} {n}\n')
        self.p.stdin.flush()

    def read(self, timeout: float = 20.0) -> str:
        assert self.p.stdout is not None
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert ready, 'no answer from the lock process'
        return self.p.stdout.readline().strip()

    def ask(self, op: str, n: int) -> str:
        self.send(op, n)
        return self.read()

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def close(self) -> None:
        if self.p.poll() is None:
            self.kill()
        for f in (self.p.stdin, self.p.stdout):
            if f is not None:
                f.close()


class LockTable(RuleBasedStateMachine):
    """Model: per lock, the holder (index of a live process), or a dead pid, or free."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = tempfile.mkdtemp(prefix='locks-model-')
        self.path = Path(self.dir) / 'region'
        self.region = _core.Region.create(self.path, 0, NLOCKS)
        self.kids = [Child(self.path) for _ in range(NPROCS)]
        self.holder: list[int | None] = [None] * NLOCKS
        self.dead: list[int | None] = [None] * NLOCKS

    def teardown(self) -> None:
        for k in self.kids:
            k.close()
        self.region.remove()
        os.rmdir(self.dir)

    def _recovery(self, n: int) -> str:
        dead = self.dead[n]
        self.dead[n] = None
        if dead is not None:
            event('a dead holder\'s lock recovered')
        return f' recovered={dead}' if dead is not None else ''

    @rule(p=st.integers(0, NPROCS - 1), n=st.integers(0, NLOCKS))
    def lock(self, p: int, n: int) -> None:
        if n >= NLOCKS:
            assert self.kids[p].ask('lock', n) == 'err ValueError'
        elif self.holder[n] == p:
            assert self.kids[p].ask('lock', n) == 'err RuntimeError'
        elif self.holder[n] is None:
            assert self.kids[p].ask('lock', n) == 'ok None' + self._recovery(n)
            self.holder[n] = p

    @rule(p=st.integers(0, NPROCS - 1), n=st.integers(0, NLOCKS))
    def unlock(self, p: int, n: int) -> None:
        answer = self.kids[p].ask('unlock', n)
        if n >= NLOCKS:
            assert answer == 'err ValueError'
        elif self.holder[n] == p:
            assert answer == 'ok None'
            self.holder[n] = None
        else:
            assert answer == 'err RuntimeError'

    @rule(p=st.integers(0, NPROCS - 1), n=st.integers(0, NLOCKS - 1))
    def is_locked(self, p: int, n: int) -> None:
        if self.holder[n] is not None:
            assert self.kids[p].ask('is', n) == 'ok True'
        else:
            # a dead holder's lock is recovered by the probe, then free
            assert self.kids[p].ask('is', n) == 'ok False' + self._recovery(n)

    @rule(p=st.integers(0, NPROCS - 1), q=st.integers(0, NPROCS - 1), n=st.integers(0, NLOCKS - 1))
    def hand_over(self, p: int, q: int, n: int) -> None:
        """q holds n, p waits in lock(n); q's unlock wakes p, which then holds it."""
        if p == q or self.holder[n] != q:
            return
        self.kids[p].send('lock', n)
        assert self.kids[q].ask('is', n) == 'ok True'
        assert self.kids[q].ask('unlock', n) == 'ok None'
        assert self.kids[p].read() == 'ok None'
        self.holder[n] = p
        event('handed over to a waiting process')

    @precondition(lambda self: any(h is not None for h in self.holder))
    @rule(p=st.integers(0, NPROCS - 1))
    def kill_9(self, p: int) -> None:
        pid = self.kids[p].p.pid
        self.kids[p].kill()
        for n in range(NLOCKS):
            if self.holder[n] == p:
                self.holder[n] = None
                self.dead[n] = pid
        self.kids[p].close()
        self.kids[p] = Child(self.path)

    @invariant()
    def region_agrees(self) -> None:
        for n in range(NLOCKS):
            if self.holder[n] is not None:
                assert self.region.last_taker(n) == self.kids[self.holder[n]].p.pid  # type: ignore[index]


LockTable.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_lock_table_model = LockTable.TestCase
