"""Conformance with the real module (issue 13): typeshed's stubs of the PyPI package `types-uwsgi`
are the contract.

- `mypy.stubtest`, run with ONLY typeshed's `uwsgidecorators` and `uwsgi` stubs as the stubs and our
  installed package as the runtime, reports nothing for every public name of `uwsgidecorators`
  and for every `uwsgi` name the real module uses (each `uwsgi.X` in Debian's
  /usr/lib/python3/dist-packages/uwsgidecorators.py), except the lines of
  tests/conformance_allowlist.txt, each under its reason (and none of those may be stale).
- A name of that contract that the runtime lacks is listed in docs/compat.md's "Not built yet".
- A `uwsgi` name the real module uses that typeshed does not stub (`erlang_register_process`,
  the `mule_msg_hook` hook) exists in our shim, or is listed as not built.
- tests/typing_samples/typeshed_sample.py, written against typeshed's types (every decorator and
  every `uwsgi` function the decorators use, typed exactly as typeshed types them), passes
  `mypy --strict` against our package with types-uwsgi hidden, i.e. against our py.typed
  annotations.

`types-uwsgi` is installed in the test venv by .ci/run (pinned); nothing is installed here.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import uwsgi
import uwsgidecorators

ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = Path(__file__).resolve().parent / 'conformance_allowlist.txt'
COMPAT = ROOT / 'docs' / 'compat.md'
SAMPLE = Path(__file__).resolve().parent / 'typing_samples' / 'typeshed_sample.py'
REAL_MODULE = Path('/usr/lib/python3/dist-packages/uwsgidecorators.py')

pytest.importorskip('mypy', reason='mypy is installed by dev-setup and .ci/run')


def _missing(what: str) -> None:
    # .ci/run installs everything: a missing piece there is a failure, not a skip.
    if os.environ.get('CI_PYTHON_VENV'):
        pytest.fail(f'{what} is missing from the CI venv')
    pytest.skip(f'{what} is not installed (.ci/run installs it)')


def _typeshed_stub(package: str) -> Path:
    try:
        dist = importlib.metadata.distribution('types-uwsgi')
    except importlib.metadata.PackageNotFoundError:
        _missing('types-uwsgi')
    for f in dist.files or ():
        if str(f) == f'{package}-stubs/__init__.pyi':
            return Path(str(dist.locate_file(f)))
    raise AssertionError(f'types-uwsgi has no {package}-stubs/__init__.pyi')


def _names_the_real_module_uses() -> set[str]:
    if not REAL_MODULE.exists():
        _missing(f'{REAL_MODULE} (Debian package python3-uwsgidecorators)')
    return set(re.findall(r'\buwsgi\.([A-Za-z_]\w*)', REAL_MODULE.read_text()))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ('MYPYPATH', 'PYTHONPATH')}
    env.update(extra)
    return env


def _not_built_section() -> str:
    text = COMPAT.read_text()
    m = re.search(r'^## Not built yet\n(.*?)(?=^## )', text, re.S | re.M)
    assert m, 'docs/compat.md has no "## Not built yet" section'
    return m.group(1)


def _allowlist() -> dict[str, str]:
    """{stubtest line: its reason}; every entry must have a `#` reason line above it."""
    entries: dict[str, str] = {}
    reason: list[str] = []
    for line in ALLOWLIST.read_text().splitlines():
        if line.startswith('#'):
            reason.append(line.lstrip('# ').strip())
        elif not line.strip():
            reason = []
        else:
            assert reason, f'{ALLOWLIST.name}: no reason above {line!r}'
            entries[line.strip()] = ' '.join(reason)
    return entries


@pytest.fixture(scope='module')
def stubtest_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    tmp = tmp_path_factory.mktemp('typeshed')
    for package in ('uwsgi', 'uwsgidecorators'):
        (tmp / 'stubs' / package).mkdir(parents=True)
        shutil.copy(_typeshed_stub(package), tmp / 'stubs' / package / '__init__.pyi')
    (tmp / 'none.ini').write_text('[mypy]\n')  # no project config: nothing but the stubs below
    # cwd is the temporary dir (no pyproject.toml, whose mypy_path would put our sources first):
    # the stubs are typeshed's alone, the runtime is our package as installed.
    r = subprocess.run(
        [
            sys.executable,
            '-m',
            'mypy.stubtest',
            '--concise',
            '--ignore-missing-stub',  # our extras (configure, exceptions, ...) are not typeshed's
            '--mypy-config-file',
            str(tmp / 'none.ini'),
            'uwsgidecorators',
            'uwsgi',
        ],
        cwd=tmp,
        env=_clean_env(MYPYPATH=str(tmp / 'stubs')),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode in (0, 1), r.stdout + r.stderr
    assert 'error: ' not in r.stderr and 'Traceback' not in r.stderr, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()]


def _in_contract(obj: str, used: set[str]) -> bool:
    parts = obj.split('.')
    if parts[0] == 'uwsgidecorators':
        return True
    return parts[0] == 'uwsgi' and len(parts) > 1 and parts[1] in used


def test_stubtest_against_typeshed_reports_only_justified_differences(stubtest_lines: list[str]) -> None:
    used = _names_the_real_module_uses()
    allowed = _allowlist()
    unexplained, seen = [], set()
    for line in stubtest_lines:
        obj = line.split(' ', 1)[0]
        if not _in_contract(obj, used) or line.endswith(' is not present at runtime'):
            continue  # outside the contract; missing names: the next test
        if line in allowed:
            seen.add(line)
        else:
            unexplained.append(line)
    assert not unexplained, 'stubtest (typeshed stubs vs our runtime):\n' + '\n'.join(unexplained)
    stale = sorted(set(allowed) - seen)
    assert not stale, f'{ALLOWLIST.name} lists lines stubtest no longer reports:\n' + '\n'.join(stale)


def test_contract_names_missing_at_runtime_are_listed_as_not_built(stubtest_lines: list[str]) -> None:
    used = _names_the_real_module_uses()
    missing = [
        line.split(' ', 1)[0]
        for line in stubtest_lines
        if line.endswith(' is not present at runtime') and _in_contract(line.split(' ', 1)[0], used)
    ]
    section = _not_built_section()
    unlisted = [name for name in missing if f'`{name}`' not in section and f'(`{name}`' not in section]
    assert not unlisted, f'missing at runtime and not in docs/compat.md "Not built yet": {unlisted}'
    # and the other way round: each uwsgi name listed there is really absent (not stale)
    for name in re.findall(r'`uwsgi\.(\w+)`', section):
        assert not hasattr(uwsgi, name), f'uwsgi.{name} is built but listed in "Not built yet"'


def test_names_the_real_module_uses_outside_typeshed_exist() -> None:
    stub = _typeshed_stub('uwsgi').read_text()
    section = _not_built_section()
    for name in sorted(_names_the_real_module_uses()):
        if re.search(rf'^(def {name}\b|{name}\b\s*[:=])', stub, re.M):
            continue  # typeshed's: the stubtest tests cover it
        present = hasattr(uwsgi, name) or name in uwsgi.__annotations__  # settable hooks are declared
        assert present or f'`uwsgi.{name}`' in section, f'uwsgi.{name} (used by the real module) is missing'


def test_every_public_name_of_typeshed_uwsgidecorators_exists() -> None:
    stub = _typeshed_stub('uwsgidecorators').read_text()
    names = set(re.findall(r'^(?:def|class) ([a-z]\w*)', stub, re.M))
    names |= set(re.findall(r'^([a-z]\w*): ', stub, re.M))
    assert {'spool', 'timer', 'lock', 'harakiri', 'farm'} <= names
    assert sorted(n for n in names if not hasattr(uwsgidecorators, n)) == []


def test_typeshed_typed_sample_passes_mypy_against_our_annotations(tmp_path: Path) -> None:
    # test_typing's runner hides types-uwsgi (mypy would take its stubs over our py.typed).
    from test_typing import _mypy

    r = _mypy(SAMPLE, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_typeshed_sample_also_passes_against_typeshed(tmp_path: Path) -> None:
    # The sample is typeshed-correct: with types-uwsgi visible (mypy then takes its stubs), it passes.
    _typeshed_stub('uwsgi')
    r = subprocess.run(
        [
            sys.executable,
            '-m',
            'mypy',
            '--strict',
            '--no-error-summary',
            '--show-error-codes',
            '--cache-dir',
            str(tmp_path / 'cache'),
            str(SAMPLE),
        ],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
