"""``python -m uwsgidecorators``: the same as the ``uwsgidecorators`` command."""

from .cli import main

if __name__ == '__main__':  # importing the module (stubtest, tools) must not start a master
    raise SystemExit(main())
