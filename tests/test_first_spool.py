"""The first `uwsgi.spool` of a process imports nothing: the shim loads what an enqueue needs when
it is imported (docs/architecture.md), so the first task's enqueue-to-start latency does not carry
a module import (it carried 8-15 ms of `config`, `dataclasses`, `inspect`, `json`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CODE = '''
import sys, uwsgi
before = set(sys.modules)
uwsgi.spool({b'a': b'1'})
uwsgi.spool({b'a': b'2'})
print(' '.join(sorted(set(sys.modules) - before)) or '-')
'''


def test_the_first_enqueue_imports_no_module(tmp_path: Path) -> None:
    spool = tmp_path / 'spool'
    spool.mkdir(mode=0o700)
    env = {**os.environ, 'UWSGIDECORATORS_SPOOLERS': str(spool)}
    env.pop('PYTHONSTARTUP', None)
    out = subprocess.run(
        [sys.executable, '-c', CODE], capture_output=True, text=True, check=True, timeout=60, env=env
    )
    assert out.stdout.strip() == '-', f'the first uwsgi.spool imported: {out.stdout.strip()}'
    assert len(list(spool.rglob('uwsgi_spoolfile_*'))) == 2, 'both jobs are written'
