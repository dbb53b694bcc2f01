"""Start real uWSGI and our master as subprocesses and always stop them by pid.

Every process gets its own session (so its process group id is its pid). `stop()` sends
SIGINT to the pid, waits a bounded time, then SIGKILLs the pid, its process group and
every descendant pid seen (found through /proc, recorded while it ran and at stop time).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# variables that would make real uWSGI's embedded Debian python look at our venv
_FOREIGN_PY_ENV = ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'PYTHONSTARTUP', 'PYTHONUSERBASE')


def children_map() -> dict[int, list[int]]:
    m: dict[int, list[int]] = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open(f'/proc/{d}/stat') as f:
                st = f.read()
            ppid = int(st[st.rindex(')') + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        m.setdefault(ppid, []).append(int(d))
    return m


def descendants(pid: int) -> list[int]:
    m, out, todo = children_map(), [], [pid]
    while todo:
        for c in m.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            st = f.read()
        return st[st.rindex(')') + 2] != 'Z'
    except (OSError, ValueError, IndexError):
        return False


def cmdline(pid: int) -> str:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(errors='replace').strip()
    except OSError:
        return ''


class Proc:
    def __init__(self, argv: list[str], *, name: str, log_dir: Path, env: dict | None = None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.name = name
        self.log_path = Path(log_dir) / (f'{name}.log')
        self._log = open(self.log_path, 'wb')
        self.seen: set[int] = set()
        self.p = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def children(self) -> list[int]:
        kids = descendants(self.pid)
        self.seen.update(kids)
        return kids

    def log(self) -> str:
        try:
            if not self._log.closed:
                self._log.flush()
            return self.log_path.read_text(errors='replace')
        except OSError:
            return ''

    def tail(self, n: int = 60) -> str:
        return '\n'.join(self.log().splitlines()[-n:])

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int | None:
        """Graceful stop, then SIGKILL for anything left. Returns the exit status (None if killed)."""
        rc = None
        if self.alive():
            self.children()
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            rc = self.wait(timeout)
            if rc is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(5)
        else:
            rc = self.p.returncode
        self.kill_leftovers()
        if not self._log.closed:
            self._log.close()
        return rc

    def leftovers(self) -> list[int]:
        """Descendant pids still alive (after the master is gone they may be re-parented)."""
        return [p for p in sorted(self.seen) if pid_alive(p)]

    def kill_leftovers(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for p in sorted(self.seen):
            if pid_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class ProcGroup:
    """Tracks every process a test starts; `close()` stops them all (used in fixture finalizers)."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []

    def start(self, argv, *, name: str, env: dict | None = None, cwd=None) -> Proc:
        n, i = name, 1
        while any(p.name == n for p in self.procs):
            i += 1
            n = f'{name}-{i}'
        p = Proc(argv, name=n, log_dir=self.log_dir, env=env, cwd=cwd)
        self.procs.append(p)
        return p

    # ---- the two implementations
    def master(self, args: Iterable, *, name: str = 'ours', env: dict | None = None, cwd=None) -> Proc:
        return self.start(master_argv() + [str(a) for a in args], name=name, env=our_env(env), cwd=cwd)

    def uwsgi(self, args: Iterable, *, name: str = 'uwsgi', env: dict | None = None, cwd=None) -> Proc:
        argv = [uwsgi_bin(), '--plugin', 'python3', '--master', '--die-on-term'] + [str(a) for a in args]
        return self.start(argv, name=name, env=uwsgi_env(env), cwd=cwd)

    def python(self, args: Iterable, *, name: str = 'py', env: dict | None = None, cwd=None) -> Proc:
        return self.start([sys.executable] + [str(a) for a in args], name=name, env=our_env(env), cwd=cwd)

    def close(self) -> None:
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                errors.append(f'{p.name}: {e!r}')
        if errors:
            raise RuntimeError('; '.join(errors))

    def logs(self) -> str:
        return '\n'.join(f'----- {p.name} (pid {p.pid})\n{p.tail()}' for p in self.procs)


def uwsgi_bin() -> str:
    b = os.environ.get('UWSGI_BIN') or shutil.which('uwsgi')
    if not b:
        raise RuntimeError('uwsgi is not installed (apt-get install uwsgi-core uwsgi-plugin-python3)')
    return b


def master_argv() -> list[str]:
    """Our master: the console script next to this interpreter, else `python -m uwsgidecorators`."""
    override = os.environ.get('UWSGIDECORATORS_MASTER')
    if override:
        return override.split()
    script = Path(sys.executable).parent / 'uwsgidecorators'
    if script.exists():
        return [str(script)]
    return [sys.executable, '-m', 'uwsgidecorators']


def our_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop('PYTHONSTARTUP', None)
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env['PYTHONUNBUFFERED'] = '1'
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def uwsgi_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_PY_ENV}
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def wait_until(
    pred: Callable[[], object], timeout: float, what: str, procs: Iterable[Proc] = (), interval: float = 0.02
):
    """Poll `pred` until truthy; fail (AssertionError with the logs) on timeout or if a process dies."""
    procs = list(procs)
    end = time.monotonic() + timeout
    turn = 0
    while True:
        r = pred()
        if r:
            return r
        turn += 1
        for p in procs:
            if turn % 25 == 1:
                p.children()  # remember every pid the process tree ever had, for the final cleanup
            if not p.alive():
                raise AssertionError(f'{p.name} exited (status {p.p.returncode}) while waiting for {what}\n{p.tail()}')
        if time.monotonic() > end:
            logs = '\n'.join(f'----- {p.name}\n{p.tail()}' for p in procs)
            raise AssertionError(f'timeout ({timeout:.0f}s) waiting for {what}\n{logs}')
        time.sleep(interval)


def read_jsonl(path) -> list[dict]:
    """Complete lines only (a writer may be mid-line)."""
    try:
        with open(path, encoding='utf-8') as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.split('\n')[:-1] if line.strip()]


def read_lines(path) -> list[str]:
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return [line for line in data.split('\n')[:-1] if line]
