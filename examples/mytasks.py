"""The module of the quick-start command line (run from this directory):

    uwsgidecorators --socket :3031 --spooler myspool --master --processes 4 --import mytasks

(`--socket` is accepted with a notice: requests are your web server's job.) The same line with
`uwsgi` instead of `uwsgidecorators` runs it under real uWSGI.

Every 3 seconds one of the 4 workers prints "3 seconds elapsed"; every 10 seconds the spooler
prints its line. Enqueue from any Python process that knows the spool directory, for instance:

    UWSGIDECORATORS_SPOOLERS=myspool python -c "import mytasks; mytasks.hello(name='you')"
"""

from uwsgidecorators import spool, timer


@spool
def hello(arguments):
    print(f'hello, {arguments.get("name", "world")}!', flush=True)


@spool(pass_arguments=True)
def add(a, b):
    print(f'{a} + {b} = {a + b}', flush=True)


@timer(3)
def three_seconds(num):
    print('3 seconds elapsed', flush=True)


@timer(10, target='spooler')
def ten_seconds_in_the_spooler(num):
    print('10 seconds elapsed in the spooler', flush=True)
