"""Which shared region (``_core.Region``) this process uses for locks and direct delivery.

In order:

1. the master's, in the master and every process it forked (``_config.state().region``);
2. ``UWSGIDECORATORS_REGION`` (the master sets it for its children, so a process they exec
   finds it);
3. ``<control socket>.region`` when this process knows the master's control socket
   (``configure(control=...)`` or ``UWSGIDECORATORS_CONTROL``): it must exist;
4. ``<first spool dir>/.uwsgidecorators/control.region`` when it exists (the master's default
   place: a process that knows the spool dir finds it by itself);
5. otherwise a private region with locks 0 to ``PRIVATE_LOCKS - 1``: no master is known, so
   the locks serialise this process's threads and the children it forks afterwards (code
   under plain pytest or a script runs as it would in one uWSGI worker).

A process that was told of a master (2 or 3) whose region cannot be mapped gets
``MasterNotFoundError``: a lock that silently protects nothing is worse than an error.
"""

from __future__ import annotations

import os

from . import config as _config
from .exceptions import MasterNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ['PRIVATE_LOCKS', 'REGION_SUFFIX', 'forget', 'region', 'region_path']

#: locks of the private region of a process that knows no master (numbers 0 to 63)
PRIVATE_LOCKS = 64
#: the region's file is the control socket's path plus this
REGION_SUFFIX = '.region'

_cached: Any = None


def region_path(control: str) -> str:
    """Where a master whose control socket is ``control`` keeps its region."""
    return control + REGION_SUFFIX


def forget() -> None:
    """Drop the cached region (the configuration changed), here and in the core's ``lock``."""
    global _cached
    _cached = None
    try:
        from . import _core
    except ImportError:
        return
    _core.forget_lock_region()


_config.on_change.append(forget)


def _open(path: str, how: str) -> Any:
    from . import _core

    try:
        return _core.Region.open(path)
    except OSError as exc:
        raise MasterNotFoundError(
            f'cannot map the uwsgidecorators master\'s shared region {path} ({how}): {exc.strerror or exc}; '
            'is the master running?'
        ) from None


def region() -> Any:
    """This process's region (see the module docs), resolved once and cached."""
    global _cached
    r = _cached
    if r is not None:
        return r
    st = _config.state()
    if st.region is not None:
        r = st.region
    elif os.environ.get(_config.ENV_REGION):
        r = _open(os.environ[_config.ENV_REGION], _config.ENV_REGION)
    elif st.control or os.environ.get(_config.ENV_CONTROL):
        if st.control:
            control, how = st.control, 'configure(control=...)'
        else:
            control, how = os.environ[_config.ENV_CONTROL], _config.ENV_CONTROL
        r = _open(region_path(control), f'next to the control socket given by {how}')
    else:
        r = None
        if st.spoolers:
            from .signals import default_control_path

            guess = region_path(default_control_path(st.spoolers[0]))
            if os.path.exists(guess):
                r = _open(guess, "next to the first spool dir's control socket")
        if r is None:
            from . import _core

            r = _core.Region.private(PRIVATE_LOCKS)
    _cached = r
    return r
