"""The packages' annotations, checked the way a user's CI checks them: mypy --strict on small
programs that import `uwsgi` and `uwsgidecorators` as installed (so `py.typed` must ship in
both packages of the wheel). Issue 10: without `uwsgi/py.typed` mypy said "library stubs not
installed for uwsgi" and missed `uwsgi.signal("seventeen")`; `send_email.spool(123)` passed;
`@spool(pass_arguments=True)` was an untyped decorator under --strict.

tests/typing_samples/ok_sample.py must pass (uWSGI-style code and our documented extras); every line of
tests/typing_samples/bad_sample.py marked `# E:` must be reported, and no other line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / 'typing_samples'

pytest.importorskip('mypy', reason='mypy is installed by dev-setup and .ci/run')


def _mypy(sample: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on `sample` against our installed packages' py.typed annotations.

    Run from an empty directory, so the packages are the installed ones (the wheel or the develop
    install), as a user's mypy finds them. typeshed's `types-uwsgi` (in the CI venv for
    tests/test_conformance.py) would win over them (PEP 561: a `-stubs` package comes first), so
    site-packages is hidden and MYPYPATH holds links to our three packages alone.
    """
    import _uwsgidecorators_runtime
    import uwsgi
    import uwsgidecorators

    pkgs = tmp_path / 'pkgs'
    pkgs.mkdir(exist_ok=True)
    for mod in (uwsgi, uwsgidecorators, _uwsgidecorators_runtime):
        src = Path(str(mod.__file__)).resolve().parent
        assert (src / 'py.typed').exists(), src
        link = pkgs / src.name
        if not link.exists():
            link.symlink_to(src, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ('MYPYPATH', 'PYTHONPATH')}
    env['MYPYPATH'] = str(pkgs)
    return subprocess.run(
        [
            sys.executable,
            '-m',
            'mypy',
            '--strict',
            '--no-site-packages',
            '--no-error-summary',
            '--show-error-codes',
            '--cache-dir',
            str(tmp_path / 'cache'),
            str(sample),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_uwsgi_style_code_and_our_extras_pass_mypy_strict(tmp_path):
    r = _mypy(HERE / 'ok_sample.py', tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_type_errors_are_reported(tmp_path):
    sample = HERE / 'bad_sample.py'
    r = _mypy(sample, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'library stubs' not in r.stdout and 'py.typed' not in r.stdout, r.stdout
    reported = {int(m.group(1)) for m in re.finditer(r'bad_sample\.py:(\d+): error:', r.stdout)}
    marked = {i for i, line in enumerate(sample.read_text().splitlines(), 1) if '# E:' in line}
    assert marked and reported == marked, r.stdout
