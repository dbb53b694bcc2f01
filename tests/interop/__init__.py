"""Helpers for the interop and fault tests: a stdlib spool codec, process control and the
spooler-import modules loaded into real uWSGI and into our master (tests/interop/*_spooler.py).

Nothing here imports the product: it is the independent side of every comparison.
"""
