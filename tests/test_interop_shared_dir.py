"""Interop (d): our spooler and the real uWSGI spooler drain ONE directory together.

Both load the same spooler function (tests/interop/record_spooler.py) that appends each task's
id to a per-process file. Tasks come from two writers: 2000 are in the directory before the
spoolers start (written by the stdlib model writer, temp name + rename), 1000 more arrive
while both run (written by our core's `spool_write`). Every task must run exactly once:
the union of the per-process files is all ids, with no duplicate, and both spoolers took part.
Claims work because our OFD lock and uWSGI's POSIX fcntl lock conflict on Linux.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path

from interop import procs as P
from interop import spoolfmt

REC = Path(__file__).resolve().parent / 'interop' / 'record_spooler.py'
PREFILL, LIVE = 2000, 1000


def _ids(work: Path, tag: str = '*') -> dict[str, list[str]]:
    out = {}
    for f in glob.glob(str(work / (f'ids.{tag}.*'))):
        out[os.path.basename(f)] = P.read_lines(f)
    return out


def test_ours_and_uwsgi_share_one_dir_each_task_exactly_once(procs, spool_dir, work_dir, uwsgi_bin):
    from uwsgidecorators import _core

    all_ids = set()
    for i in range(PREFILL):
        tid = f'pre-{i}'
        spoolfmt.write_task(str(spool_dir), [(b'id', tid.encode()), (b'n', b'%d' % i)])
        all_ids.add(tid)

    common = ['--spooler', spool_dir, '--spooler-import', REC, '--spooler-frequency', '1', '--spooler-quiet']
    env = {'REC_DIR': work_dir, 'REC_SLEEP': '0.0005'}
    u = procs.uwsgi(common, env={**env, 'REC_TAG': 'uwsgi'})
    o = procs.master(common, env={**env, 'REC_TAG': 'ours'})
    P.wait_until(
        lambda: glob.glob(str(work_dir / 'ready.uwsgi.*')) and glob.glob(str(work_dir / 'ready.ours.*')),
        30,
        'both spoolers to import record_spooler.py',
        [u, o],
    )
    for i in range(LIVE):
        tid = f'live-{i}'
        _core.spool_write(str(spool_dir), [(b'id', tid.encode())])
        all_ids.add(tid)

    def drained():
        return sum(len(v) for v in _ids(work_dir).values()) >= len(all_ids) and not spoolfmt.runnable_files(
            str(spool_dir)
        )

    P.wait_until(drained, 120, f'the two spoolers to drain {len(all_ids)} tasks', [u, o])
    o.stop()
    u.stop()

    per_proc = _ids(work_dir)
    counts = Counter(i for ids in per_proc.values() for i in ids)
    dups = {k: v for k, v in counts.items() if v > 1}
    assert not dups, f'{len(dups)} task(s) ran more than once, e.g. {list(dups.items())[:5]}'
    assert set(counts) == all_ids, f'missing {sorted(all_ids - set(counts))[:10]}'
    by_impl = Counter()
    for name, ids in per_proc.items():
        by_impl[name.split('.')[1]] += len(ids)
    assert by_impl['ours'] > 0 and by_impl['uwsgi'] > 0, f'only one implementation ran tasks: {dict(by_impl)}'
    assert spoolfmt.runnable_files(str(spool_dir)) == []
