"""The task module of the example (`import = task` in uwsgi.ini), as uWSGI's docs write it.

It imports Django models at module level: the master runs django.setup() before importing it,
because DJANGO_SETTINGS_MODULE is in its environment (`env = ...` in uwsgi.ini).

* ``clear_django_session``: a cron entry (uWSGI's five integers), 02:40 every night in the
  settings' TIME_ZONE; it runs in one worker.
* ``save_note``: a spooler task; enqueue it from any process that knows the spool directory:

      UWSGIDECORATORS_SPOOLERS=spool python manage.py shell -c "import task; task.save_note(text='hi')"
"""

import os

from django.contrib.sessions.models import Session
from notes.models import Note
from uwsgidecorators import cron, spool


@cron(40, 2, -1, -1, -1)
def clear_django_session(num):
    print("it's 2:40 in the morning: clearing django sessions", flush=True)
    deleted, _ = Session.objects.all().delete()
    Note.objects.create(text=f'cleared {deleted} session(s)', source='cron', pid=os.getpid())


@spool
def save_note(arguments):
    Note.objects.create(text=arguments['text'], source='spooler', pid=os.getpid())
    print(f'note saved: {arguments["text"]}', flush=True)
