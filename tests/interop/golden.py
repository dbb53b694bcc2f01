"""Golden vectors (tests/golden, or $UWSGI_GOLDEN_DIR): placing them in a spool dir and the expected
outcome of each file for real uWSGI and for us.

`place()` is golden/verify_roundtrip.py's own `rebuild` (imported, not copied), so the
directory our spooler sees is exactly the one the real uWSGI was verified on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

from . import procs as P
from .spoolfmt import strip_items

CONSUMED = 'consumed'
LEFT = 'left-in-place'
DELETED = 'deleted-without-call'  # real uWSGI, zero-length key (r17)
QUARANTINED = 'quarantined'  # ours, same file: moved to <dir>/quarantine/


def load_manifest(golden_dir) -> dict:
    with open(Path(golden_dir) / 'manifest.json', encoding='utf-8') as f:
        return json.load(f)


def _verify_module(golden_dir):
    path = Path(golden_dir) / 'verify_roundtrip.py'
    spec = importlib.util.spec_from_file_location('golden_verify_roundtrip', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def place(src_dir, manifest, dest, golden_dir=None) -> dict[str, dict]:
    """Copy every file of `src_dir` (a golden-format dir: files/ + manifest) to `dest` under its
    real name (priority subdir, `at` mtime), with golden/verify_roundtrip.py's own code."""
    return _verify_module(golden_dir or src_dir).rebuild(str(src_dir), manifest, str(dest))


def has_var(job, key: str) -> bool:
    return any(v['key']['utf8'] == key for v in job['vars'])


def expected(job, impl: str, now: float | None = None) -> str:
    """What happens to a placed golden file: impl 'uwsgi' (with --spooler-ordered) or 'ours'."""
    now = time.time() if now is None else now
    if job.get('reader_error'):
        return DELETED if impl == 'uwsgi' else QUARANTINED
    if has_var(job, 'at') and job['mtime'] > now:
        return LEFT
    sub = job['priority_subdir']
    if sub is not None and not sub.isdigit():
        return LEFT  # e.g. 'high': neither uWSGI nor we scan non-numeric priority dirs
    return CONSUMED


def file_jobs(manifest) -> list[dict]:
    return [j for j in manifest['jobs'] if j.get('file')]


def want_items(job, task_name: str | None = None) -> list[tuple]:
    """The manifest's uwsgi_plugin_dict in comparison form; optionally with another task name
    (files written by us carry our own name)."""
    items = strip_items(job['uwsgi_plugin_dict'])
    if task_name is not None:
        import base64

        b64 = base64.b64encode(task_name.encode()).decode('ascii')
        items = [
            (kt, kb, vt, b64)
            if (kt, kb) == ('str', base64.b64encode(b'spooler_task_name').decode())
            else (kt, kb, vt, vb)
            for kt, kb, vt, vb in items
        ]
    return items


def all_files(directory) -> dict[str, str]:
    """relative path -> basename of every regular file below `directory`."""
    out = {}
    for root, _dirs, files in os.walk(directory):
        for f in files:
            out[os.path.relpath(os.path.join(root, f), directory)] = f
    return out


def consume_with_uwsgi(
    group: P.ProcGroup, golden_dir, spool, out, *, timeout: float = 30, env: dict | None = None
) -> tuple[int | None, str]:
    """golden/consume_with_uwsgi.sh (the real uWSGI spooler) over `spool`, as a tracked process
    group; returns (exit status, its output). Status 0 = drained, 2 = files left at timeout."""
    p = group.start(
        ['bash', str(Path(golden_dir) / 'consume_with_uwsgi.sh'), str(spool), str(out)],
        name='consume_with_uwsgi',
        env=P.uwsgi_env({'CONSUME_TIMEOUT': str(int(timeout)), **(env or {})}),
    )
    rc = p.wait(timeout + 30)
    p.stop()
    return rc, p.log()
