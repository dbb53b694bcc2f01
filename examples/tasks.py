"""Example task module: a few spooled jobs and a producer that enqueues some at start-up.

Run it with ``uwsgidecorators --ini examples/app.ini``: the master imports this module once,
forks a spooler and one worker; the worker's @postfork hook enqueues the demo jobs and the
spooler runs them. The log shows each job being written and then done.

The same module runs unmodified under real uWSGI (``uwsgi --ini examples/app.ini``).
"""

import os
import time

import uwsgi
from uwsgidecorators import postfork, spool, spoolraw


def _say(text):
    # stdout of the spooler is the master's terminal; flush so lines appear in order
    print(f'[tasks pid {os.getpid()}] {text}', flush=True)


@spool
def send_welcome_email(arguments):
    """Plain @spool: one dict of strings in, the job is deleted whatever happens after return.

    ``arguments`` also holds the spooler's own keys (spooler_task_name, ud_spool_func...).
    """
    _say(f'welcome email to {arguments["email"]} (template {arguments.get("template", "default")})')


@spool(pass_arguments=True)
def resize_image(path, width, height=None, quality=85):
    """pass_arguments=True: positional and keyword arguments travel pickled, any picklable type."""
    height = height or width
    _say(f'resized {path} to {width}x{height} (quality {quality})')


@spool(pass_arguments=True)
def build_report(report_id, rows):
    total = sum(amount for _name, amount in rows)
    _say(f'report {report_id}: {len(rows)} rows, total {total}')


_attempts = {}


@spoolraw
def sync_with_partner(arguments):
    """@spoolraw: the return value decides. SPOOL_RETRY keeps the job for the next spooler pass
    (every spooler-frequency seconds), SPOOL_OK deletes it."""
    name = arguments['spooler_task_name']
    _attempts[name] = _attempts.get(name, 0) + 1
    if _attempts[name] < 2:
        _say(f'partner {arguments["partner"]} not reachable yet, retrying later')
        return uwsgi.SPOOL_RETRY
    _say(f'synced with partner {arguments["partner"]} after {_attempts[name]} attempts')
    return uwsgi.SPOOL_OK


@postfork
def enqueue_demo_jobs():
    """Runs after every fork (workers and spoolers); only worker 1 produces, once per start."""
    if uwsgi.worker_id() != 1:
        return
    send_welcome_email({'email': 'ada@example.com', 'template': 'onboarding'})
    send_welcome_email(email='grace@example.com')
    resize_image('photos/cat.jpg', 800, quality=70)
    # `priority` picks a numeric subdirectory (lower runs first), `at` delays the job
    resize_image('photos/dog.jpg', 1024, 768, priority='1')
    build_report(42, [('coffee', 3), ('tea', 2)], at=str(int(time.time()) + 3))
    sync_with_partner({'partner': 'acme'})
    _say('worker 1 enqueued 6 demo jobs')
