"""The package layout's properties (docs/architecture.md, "Layout"): `import uwsgi` loads only
the private runtime and has no side effects; `import uwsgidecorators` installs the hooks."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def test_import_uwsgi_does_not_import_the_decorators_nor_set_the_spooler_hook() -> None:
    code = (
        'import sys, uwsgi\n'
        "print('uwsgidecorators' in sys.modules, any(m.startswith('uwsgidecorators.') for m in sys.modules),\n"
        "      hasattr(uwsgi, 'spooler'), hasattr(uwsgi, 'post_fork_hook'))\n"
    )
    assert _run(code) == 'False False False False'


def test_uwsgi_lock_goes_through_the_runtime_only() -> None:
    # uwsgi.lock resolves this process's region (here: a private one, no master is known) in the
    # runtime package: neither the decorators nor their hooks may be loaded on the way.
    code = (
        'import sys, uwsgi\n'
        'uwsgi.lock(); held = uwsgi.is_locked(); uwsgi.unlock()\n'
        "print(held, uwsgi.is_locked(), any(m.split('.')[0] == 'uwsgidecorators' for m in sys.modules),\n"
        "      '_uwsgidecorators_runtime.region' in sys.modules, hasattr(uwsgi, 'spooler'))\n"
    )
    assert _run(code) == 'True False False True False'


def test_import_uwsgi_loads_the_extension_at_import() -> None:
    # The first uwsgi.spool() in a request must not pay the extension's load.
    assert _run("import sys, uwsgi; print('_uwsgidecorators_runtime._core' in sys.modules)") == 'True'


def test_import_uwsgidecorators_installs_the_spooler_hook_on_the_shim() -> None:
    code = (
        'import uwsgi, uwsgidecorators\n'
        'print(uwsgi.spooler is uwsgidecorators.manage_spool_request,\n'
        '      uwsgi.post_fork_hook is uwsgidecorators.postfork_chain_hook)\n'
    )
    assert _run(code) == 'True True'


def test_public_exceptions_are_the_runtime_classes() -> None:
    import uwsgidecorators
    import uwsgidecorators.exceptions
    from _uwsgidecorators_runtime import exceptions

    for name in exceptions.__all__:
        assert getattr(uwsgidecorators.exceptions, name) is getattr(exceptions, name)
    assert uwsgidecorators.SpoolError is exceptions.SpoolError


def test_exceptions_keep_their_public_module_name_and_pickle() -> None:
    import pickle

    from uwsgidecorators.exceptions import SpoolDirectoryError

    exc = SpoolDirectoryError(2, 'no such spool dir', '/nowhere')
    assert type(exc).__module__ == 'uwsgidecorators.exceptions'
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is SpoolDirectoryError and again.args == exc.args


def test_kinds_and_control_datagrams_come_from_the_core() -> None:
    from _uwsgidecorators_runtime import _core, shared

    assert [k.label for k in (_core.Kind.WORKER, _core.Kind.SPOOLER, _core.Kind.MULE)] == ['worker', 'spooler', 'mule']
    assert (shared.KIND_SPOOLER, shared.KIND_WORKER) == (_core.Kind.SPOOLER.code, _core.Kind.WORKER.code)
    assert _core.control_raise(7) == b'S\x07'  # the layout src/proto/control.rs documents
    assert _core.control_register(3, 'workers') == b'R\x03workers'
    assert _core.control_cron(1, True, 'UTC', '@daily') == b'c\x01\x01\x03UTCS@daily'
    with pytest.raises(ValueError, match='longer than 255 bytes'):
        _core.control_cron(1, False, 'x' * 256, '@daily')
