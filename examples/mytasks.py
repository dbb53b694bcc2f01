"""The module of the quick-start command line (run from this directory):

    uwsgidecorators --socket :3031 --spooler myspool --master --processes 4 --import mytasks

(`--socket` is accepted with a notice: requests are your web server's job.) Enqueue from any
Python process that knows the spool directory, for instance:

    UWSGIDECORATORS_SPOOLERS=myspool python -c "import mytasks; mytasks.hello(name='you')"
"""

from uwsgidecorators import spool


@spool
def hello(arguments):
    print(f'hello, {arguments.get("name", "world")}!', flush=True)


@spool(pass_arguments=True)
def add(a, b):
    print(f'{a} + {b} = {a + b}', flush=True)
