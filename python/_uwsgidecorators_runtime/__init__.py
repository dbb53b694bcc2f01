"""The runtime both faces share: private, not an API.

``import uwsgi`` (the shim) and ``import uwsgidecorators`` (the decorators) each import this
package, and it imports neither of them, so the shim loads only what it needs and has no side
effects (``uwsgi.spooler`` is installed by ``import uwsgidecorators`` alone, as in uWSGI).

- ``_core``: the Rust extension (stub: ``_core.pyi``)
- ``config``: what a process knows (spool dirs, role, worker id, options)
- ``shared``: the master's shared table of children
- ``signals``: the per-process signal table and the way to the master
- ``rpc``: the per-process RPC table, local, remote and via-the-master calls
- ``exceptions``: the exception tree (re-exported by ``uwsgidecorators.exceptions``)
"""
