"""The package layout's properties (docs/architecture.md, "Layout"): `import uwsgi` loads only
the private runtime and has no side effects; `import uwsgidecorators` installs the hooks."""

from __future__ import annotations

import subprocess
import sys


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
