"""``uwsgidecorators`` command: parse uWSGI-style options, then run the master."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from _uwsgidecorators_runtime import log as _log
from _uwsgidecorators_runtime.log import get_logger
from .options import UsageError, parse_args

USAGE = """\
usage: uwsgidecorators [--ini FILE[:SECTION]] [uWSGI options...]

Runs the processes behind uWSGI's Python decorators without uWSGI: a master, one spooler
process per --spooler directory (times --spooler-processes) and --processes workers.

  --spooler DIR, -Q DIR        run a spooler on DIR (created if missing); repeatable
  --spooler-external DIR       enqueue-only directory (no spooler process); repeatable
  --import MOD|FILE.py         import in the master before forking; repeatable
  --spooler-import MOD|FILE.py import in every spooler process; repeatable
  --processes N, -p N          worker processes (default 1): they run @postfork hooks and the
                               handlers of signals, timers, cron entries and file monitors
  --harakiri S, -t S           SIGKILL a worker whose signal handler runs longer than S seconds
  --timer "SIG SECS"           raise signal SIG every SECS seconds (fractions allowed)
  --rbtimer "SIG SECS"         the same (uWSGI's red-black timer)
  --locks N                    user locks 0 to N for uwsgi.lock(n) and @lock (default 0: lock 0)
  --spooler-processes N        processes per spooler directory (default 1)
  --spooler-frequency S        rescan period in seconds (default 30)
  --spooler-max-tasks N        recycle a spooler process after N tasks
  --spooler-harakiri S         SIGKILL a spooler whose task (or signal handler) runs longer than S s
  --spooler-chdir DIR          run tasks in DIR (default: the directory of the task file)
  --spooler-ordered            also run all-digit file names (uWSGI's ordered mode)
  --spooler-quiet              no per-task log lines
  --spooler-durable            fsync every enqueued job (our option)
  --spooler-retry-delay S      first back-off after a task raised (default 1; our option)
  --spooler-retry-max-delay S  longest back-off (default 3600; our option)
  --spooler-max-attempts N     move a task that raised N times to DIR/dead/ (our option)
  --reload-mercy S             how long SIGTERM or a reload waits for running tasks (default 30)
  --touch-reload FILE          reload gracefully when FILE's mtime changes (SIGHUP and
                               uwsgi.reload() do the same): running tasks finish, the master
                               re-executes itself and imports the modules afresh; repeatable
  --touch-spoolers-reload FILE restart the spoolers gracefully when FILE's mtime changes
  --py-autoreload N            every N seconds, reload when an imported module's file changed
  --py-auto-reload-ignore MOD  a module --py-autoreload does not look at; repeatable
  --mules N                    N mules (ids in declaration order with --mule)
  --mule[=PROGRAM]             one mule; PROGRAM (script.py or module:function) is its main
                               program, else it runs @mulefunc calls and uwsgi.mule_msg_hook
  --farm NAME:ID[,ID...]       a farm of mules (uwsgi.farm_msg, @mulefunc('NAME'), @farm)
  --mule-msg-size BYTES        largest mule message (default 65536)
  --mule-harakiri S            SIGKILL a mule whose message or signal handler runs longer than S s
  --mule-send-timeout S        how long a sender waits when a mule queue is full, then
                               MuleQueueFullError (default 5; our option)
  --control-socket PATH        the master's control socket, where other processes send
                               uwsgi.signal() (default: FIRST_SPOOL_DIR/.uwsgidecorators/control;
                               attached processes: UWSGIDECORATORS_CONTROL=PATH; our option)
  --uid USER, --gid GROUP      drop privileges (names or numbers) in the master before the
                               imports and the first fork; --uid alone also takes USER's group
  --no-initgroups              no supplementary groups (default: USER's own, as uWSGI)
  --pidfile FILE               write the master's pid (before privileges are dropped)
  --pidfile2 FILE              the same, after privileges are dropped
  --vacuum                     remove the pidfiles at exit (--pidfile only without --uid/--gid)
  --logto FILE                 append the output of the master and every child to FILE
  --logto2 FILE                the same, opened after privileges are dropped
  --log-date[=FORMAT]          start each log line with the date (ctime, or a strftime FORMAT)
  --erlang NAME                run an Erlang node NAME (name@host) in a child process, for the
                               @erlang functions (EPMD must run: `epmd -daemon`)
  --erlang-cookie COOKIE       its cookie (default: ~/.erlang.cookie, as Erlang)
  --socket ADDR                serve uWSGI RPC (modifier1 173) at HOST:PORT or a Unix socket
                               path, in the workers (also --uwsgi-socket, -s; repeatable); other
                               requests (a web server's uwsgi_pass) are closed with a log line
  --listen N                   backlog of each RPC socket (default 100)
  --socket-timeout S           an RPC client's time to send its request, and uwsgi.rpc()'s
                               time for an answer (default 4)
  --rpc-max N                  functions per process (default 64)
  --rpc-max-connections N      RPC connections one worker reads or writes at once (default 64;
                               our option)
  --chdir DIR, --pythonpath DIR, --env KEY=VALUE, --master, --ini FILE, --version

Environment: UWSGIDECORATORS_TEST_CLOCK=1 lets tests move the cron clock (never in production).

Options of uWSGI that have no meaning here (HTTP sockets, WSGI modules, ...) are accepted with a
one-line notice. An option that no uWSGI knows (a typo: imprt = tasks) is an error naming the
nearest known one, unless --ignore-unknown-options (ini: ignore-unknown-options = true) is
given, e.g. for ini keys the application reads from uwsgi.opt.
"""

log = get_logger('uwsgidecorators')


def version_line() -> str:
    """What ``--version`` prints: first ``uwsgi.version`` alone, as uWSGI prints it (scripts that
    parse uWSGI's output read that first word), then this package's own name and version."""
    import uwsgi

    try:
        from importlib.metadata import PackageNotFoundError, version

        ours = version('uwsgidecorators-rs')
    except (ImportError, PackageNotFoundError):
        ours = 'unknown'
    return f'{uwsgi.version.decode()} (uwsgidecorators-rs {ours})'


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    _log.setup()  # INFO and above to stderr, as the master's lines
    if not args:
        # A master with nothing to run would sit there until killed: answer as a CLI does.
        sys.stderr.write(USAGE)
        sys.stderr.write('\nuwsgidecorators: error: no options given (try --spooler DIR --import MODULE)\n')
        return 2
    try:
        opts = parse_args(args)
        if opts.flag('help'):
            sys.stdout.write(USAGE)
            return 0
        if opts.flag('version'):
            sys.stdout.write(version_line() + '\n')
            return 0
        from .master import Master, settings_from_options, setup_log_output

        settings = settings_from_options(opts)
        setup_log_output(settings)
        for notice in opts.notices:
            log.warning('%s', notice)
        # What a reload executes again: this very command line (interpreter options included),
        # or the same options through `python -m uwsgidecorators` when called with an argv.
        if argv is None and getattr(sys, 'orig_argv', None):
            again = list(sys.orig_argv)
        else:
            again = [sys.executable, '-m', 'uwsgidecorators', *args]
        return Master(settings, reexec_argv=again).run()
    except UsageError as exc:
        sys.stderr.write(f'uwsgidecorators: error: {exc}\n')
        return 2


if __name__ == '__main__':  # pragma: no cover
    raise SystemExit(main())
