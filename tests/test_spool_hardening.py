"""Spooler defects found in trial use (issue 10), in-process: each test failed before its fix.

The real-process cases (harakiri, directory refusal at the master's start) are in
test_fault_spooler.py and test_cli_master.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uwsgi
import uwsgidecorators
from uwsgidecorators import _config, spool, spoolraw

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def unconfigured(monkeypatch):
    for var in (_config.ENV_SPOOLERS, _config.ENV_OPT, _config.ENV_MASTER_PID, _config.ENV_DURABLE):
        monkeypatch.delenv(var, raising=False)
    _config.reset()
    yield
    _config.reset()


@pytest.fixture
def qdir(unconfigured, spool_dir):
    uwsgidecorators.configure(spooler=spool_dir)
    return spool_dir


# -- 8. the empty key -----------------------------------------------------------------------


def test_empty_key_is_refused_and_the_divergence_is_listed(qdir):
    with pytest.raises(ValueError, match='cannot be empty'):
        uwsgi.spool({b'': b'x'})
    assert list(qdir.iterdir()) == []
    compat = (REPO / 'docs' / 'compat.md').read_text()
    spooler_section = compat.split('## Spooler', 1)[1].split('\n## ', 1)[0]
    assert any('empty key' in line and 'deletes it' in line for line in spooler_section.splitlines())
