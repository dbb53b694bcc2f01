"""Exception tree of uwsgidecorators.

Every error we raise on purpose derives from :class:`UwsgiError`; the spool errors also derive from
the builtin a uWSGI user would catch for the same fault. The classes live in the private runtime
(``_uwsgidecorators_runtime.exceptions``) that the ``uwsgi`` shim shares without importing this
package; this module is their public name.
"""

from __future__ import annotations

from _uwsgidecorators_runtime.exceptions import FileMonitorPathError as FileMonitorPathError
from _uwsgidecorators_runtime.exceptions import MasterNotFoundError as MasterNotFoundError
from _uwsgidecorators_runtime.exceptions import NoMasterWarning as NoMasterWarning
from _uwsgidecorators_runtime.exceptions import NotBuiltError as NotBuiltError
from _uwsgidecorators_runtime.exceptions import SpoolArgumentsError as SpoolArgumentsError
from _uwsgidecorators_runtime.exceptions import SpoolDirectoryError as SpoolDirectoryError
from _uwsgidecorators_runtime.exceptions import SpoolError as SpoolError
from _uwsgidecorators_runtime.exceptions import SpoolPacketError as SpoolPacketError
from _uwsgidecorators_runtime.exceptions import SpoolTooLargeError as SpoolTooLargeError
from _uwsgidecorators_runtime.exceptions import SpoolerNotConfiguredError as SpoolerNotConfiguredError
from _uwsgidecorators_runtime.exceptions import UwsgiError as UwsgiError

__all__ = [
    'FileMonitorPathError',
    'MasterNotFoundError',
    'NoMasterWarning',
    'NotBuiltError',
    'SpoolArgumentsError',
    'SpoolDirectoryError',
    'SpoolError',
    'SpoolPacketError',
    'SpoolTooLargeError',
    'SpoolerNotConfiguredError',
    'UwsgiError',
]
