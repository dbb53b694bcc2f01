"""uWSGI-style argv and ini parsing of the `uwsgidecorators` command (options.py)."""

from __future__ import annotations

import json
import os
import socket

import pytest
from uwsgidecorators.master import settings_from_options
from uwsgidecorators.options import UsageError, parse_args

SEED_ARGV = ['--socket', ':3031', '--spooler', 'myspool', '--master', '--processes', '4', '--import', 'mytasks']
SEED_INI = '[uwsgi]\nsocket = :3031\nspooler = myspool\nmaster = true\nprocesses = 4\nimport = mytasks\n'


def _pairs(opts):
    return [(o.name, o.value) for o in opts.items]


def test_seed_command_line_is_accepted_as_is():
    opts = parse_args(SEED_ARGV)
    assert _pairs(opts) == [
        ('socket', ':3031'),
        ('spooler', 'myspool'),
        ('master', True),
        ('processes', '4'),
        ('import', 'mytasks'),
    ]
    assert opts.notices == [
        (
            'uwsgidecorators: option --socket is not served (this runtime serves spoolers and workers, '
            'not requests: keep your web server for that; to serve uWSGI RPC there, add --plugin rpc), ignored'
        )
    ]
    assert opts.strings('spooler') == ['myspool'] and opts.flag('master')
    assert opts.number('processes', 1, integer=True) == 4 and opts.strings('import') == ['mytasks']


def test_seed_ini_is_accepted_as_is(tmp_path):
    ini = tmp_path / 'app.ini'
    ini.write_text(SEED_INI)
    opts = parse_args(['--ini', str(ini)])
    assert _pairs(opts)[1:] == [
        ('socket', ':3031'),
        ('spooler', 'myspool'),
        ('master', 'true'),
        ('processes', '4'),
        ('import', 'mytasks'),
    ]
    assert len(opts.notices) == 1 and '--socket is not served' in opts.notices[0]
    # the same through a bare .ini argument, as uWSGI guesses the format from the extension
    assert _pairs(parse_args([str(ini)]))[1:] == _pairs(opts)[1:]


def test_value_forms_and_short_options():
    opts = parse_args(['--spooler=a', '-Q', 'b', '-Qc', '-M', '-p4', '-s', ':1', '--spooler-freq', '2'])
    assert _pairs(opts) == [
        ('spooler', 'a'),
        ('spooler', 'b'),
        ('spooler', 'c'),
        ('master', True),
        ('processes', '4'),
        ('socket', ':1'),
        ('spooler-freq', '2'),
    ]
    assert opts.number('spooler-frequency', 30) == 2.0  # alias
    assert _pairs(parse_args(['-Mp', '3'])) == [('master', True), ('processes', '3')]
    assert parse_args(['--workers', '5']).number('processes', 1, integer=True) == 5


def test_repeatable_options_and_opt_json():
    opts = parse_args(['--spooler', 'a', '--spooler', 'b', '--import', 'x', '--master'])
    assert opts.strings('spooler') == ['a', 'b']
    assert json.loads(opts.opt_json()) == {'spooler': ['a', 'b'], 'import': 'x', 'master': True}


def test_flags_can_be_turned_off():
    assert parse_args(['--master=false']).flag('master') is False
    assert parse_args(['--spooler-quiet']).flag('spooler-quiet') is True
    for word in ('false', 'off', 'no', '0', 'False'):
        assert parse_args([f'--spooler-ordered={word}']).flag('spooler-ordered') is False


def test_unknown_and_unserved_options_get_one_notice_each():
    argv = ['--http', ':8080', '--module', 'app:application', '--bogus', 'x', '--http', ':8081', '--frobnicate']
    with pytest.raises(UsageError, match='unknown option --bogus .*unknown option --frobnicate'):
        parse_args(argv)
    opts = parse_args([*argv, '--ignore-unknown-options'])
    notices = '\n'.join(opts.notices)
    assert notices.count('--http is not served') == 1
    assert '--module is not served' in notices
    assert 'unknown option --bogus' in notices and 'unknown option --frobnicate' in notices
    assert len(opts.notices) == 4
    # an unknown option takes the next word as its value when it is not an option itself
    assert ('bogus', 'x') in _pairs(opts) and ('frobnicate', True) in _pairs(opts)


def test_missing_value_is_an_error():
    with pytest.raises(UsageError, match='requires a value'):
        parse_args(['--spooler'])
    with pytest.raises(UsageError, match='must be an integer'):
        parse_args(['--processes', 'four']).number('processes', 1, integer=True)


def test_placeholders_and_magic_variables(tmp_path, monkeypatch):
    monkeypatch.setenv('TASKS_HOME', '/opt/tasks')
    ini = tmp_path / 'deploy.ini'
    ini.write_text(
        '; a comment\n'
        '# another\n'
        '[other]\n'
        'spooler = /never\n'
        '[uwsgi]\n'
        'base = %d\n'
        'spooler = %(base)spool\n'
        'spooler-external = %(later)/ext\n'
        'later = /srv\n'
        'chdir = $(TASKS_HOME)\n'
        'env = MISSING=$(NOT_SET_ANYWHERE:-fallback)\n'
        'pythonpath = %(nope)/x\n'
        'import = %n_tasks\n'
        'env = HOST=%h\n'
        'master\n'
        'spooler-processes = %(twice)\n'
        'twice = %(once)\n'
        'once = 2\n'
    )
    opts = parse_args(['--ini', str(ini)])
    values = {o.name: o.value for o in opts.items if o.name != 'env'}
    d = str(tmp_path) + '/'
    assert values['base'] == d
    assert opts.strings('spooler') == [d + 'spool']  # the [other] section is not read
    assert values['spooler-external'] == '/srv/ext'  # a later option, expanded recursively
    assert values['chdir'] == '/opt/tasks'
    assert values['pythonpath'] == '%(nope)/x'  # unknown placeholder: left as written, like uWSGI
    assert values['import'] == 'deploy_tasks'
    assert values['master'] == '' and opts.flag('master') is True  # a key without '=' is a flag
    assert values['spooler-processes'] == '2'
    assert opts.strings('env') == ['MISSING=fallback', 'HOST=' + socket.gethostname()]
    # placeholder-only keys are not reported as unknown options; unused custom keys are
    notices = '\n'.join(opts.notices)
    assert 'base' not in notices and 'later' not in notices and 'once' not in notices


def test_placeholder_refers_to_the_first_value(tmp_path):
    ini = tmp_path / 'a.ini'
    ini.write_text('[uwsgi]\nspooler = /one\nspooler = /two\nimport = %(spooler)\n')
    assert parse_args([str(ini)]).strings('import') == ['/one']


def test_placeholder_loop_is_an_error(tmp_path):
    ini = tmp_path / 'loop.ini'
    ini.write_text('[uwsgi]\na = %(b)\nb = %(a)\n')
    with pytest.raises(UsageError, match='never stop expanding'):
        parse_args([str(ini)])


def test_ini_section_and_includes(tmp_path):
    (tmp_path / 'inc.ini').write_text('[uwsgi]\nspooler = /inc\n[special]\nspooler = /special-inc\n')
    main = tmp_path / 'main.ini'
    main.write_text(f'[uwsgi]\nspooler = /first\nini = {tmp_path}/inc.ini\nspooler = /last\n[special]\nspooler = /sp\n')
    # includes are expanded in place ("top-bottom, expand asap")
    assert parse_args(['--ini', str(main)]).strings('spooler') == ['/first', '/inc', '/last']
    assert parse_args(['--ini', f'{main}:special']).strings('spooler') == ['/sp']
    opts = parse_args(['--ini', f'{main}:absent'])
    assert any('cannot find section [absent]' in n for n in opts.notices)
    with pytest.raises(UsageError, match='unable to read ini file'):
        parse_args(['--ini', str(tmp_path / 'missing.ini')])


def test_settings_create_and_resolve_spool_dirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(tmp_path, tmp_path / 'link')
    opts = parse_args(
        [
            '--spooler',
            'link/q1',
            '--spooler-external',
            'ext',
            '-Q',
            'q2',
            '--processes',
            '0',
            '--spooler-processes',
            '2',
            '--spooler-harakiri',
            '7',
            '--spooler-max-tasks',
            '3',
            '--spooler-quiet',
            '--spooler-durable',
            '--spooler-max-attempts',
            '5',
            '--worker-reload-mercy',
            '4',
            '--spooler-python-import',
            'x.py',
        ]
    )
    s = settings_from_options(opts)
    real = os.path.realpath(tmp_path)
    assert s.spoolers == [os.fsencode(p) for p in (f'{real}/q1', f'{real}/ext', f'{real}/q2')]
    assert s.external == {1}
    assert (tmp_path / 'q1').stat().st_mode & 0o777 == 0o700  # uWSGI: 0750
    assert (s.workers, s.spooler_processes, s.harakiri, s.max_tasks) == (0, 2, 7.0, 3)
    assert (s.quiet, s.durable, s.max_attempts, s.reload_mercy) == (True, True, 5, 4.0)
    assert s.spooler_imports == ['x.py']
    assert json.loads(s.opt_json)['spooler-external'] == 'ext'


def test_settings_defaults():
    s = settings_from_options(parse_args([]))
    assert s.spoolers == [] and s.workers == 1 and s.frequency == 30.0 and s.reload_mercy == 30.0


def test_cli_help_version_and_errors(capsys):
    from uwsgidecorators.cli import main

    assert main(['--help']) == 0
    assert '--spooler DIR' in capsys.readouterr().out
    assert main(['--version']) == 0
    assert 'uwsgidecorators-rs' in capsys.readouterr().out
    assert main(['--processes', 'many']) == 2
    assert 'must be an integer' in capsys.readouterr().err


def test_an_option_no_uwsgi_knows_is_an_error_naming_the_nearest_one(tmp_path):
    """Before, `imprt = tasks` only warned, and the master started with no task to run."""
    ini = tmp_path / 'app.ini'
    ini.write_text('[uwsgi]\nspooler = /tmp/q\nimprt = tasks\n')
    expected = r'unknown option --imprt \(.*app.ini:3\): no uWSGI version knows it; did you mean --import\?'
    with pytest.raises(UsageError, match=expected):
        parse_args(['--ini', str(ini)])
    with pytest.raises(UsageError, match='did you mean --spooler-processes'):
        parse_args(['--spooler-proceses', '2'])
    with pytest.raises(UsageError, match='unknown option -K'):
        parse_args(['-K'])
    # the operator's way out: a key the application reads from uwsgi.opt
    ini.write_text('[uwsgi]\nimprt = tasks\nignore-unknown-options = true\nmyapp-setting = 5\n')
    opts = parse_args(['--ini', str(ini)])
    assert any('unknown option --imprt' in n and 'ignored' in n for n in opts.notices)
    assert any('unknown option --myapp-setting' in n for n in opts.notices)
    assert json.loads(opts.opt_json())['myapp-setting'] == '5'


def test_uwsgi_options_we_do_not_serve_only_get_a_notice():
    """Names from the vendored list of uWSGI's options (generated from the real binary)."""
    from uwsgidecorators.options import uwsgi_options

    assert {'gevent', 'http', 'spooler', 'import', 'cache2', 'log-date'} <= uwsgi_options()
    assert 'imprt' not in uwsgi_options()
    opts = parse_args(['--cache2', 'name=x,items=10', '--gevent', '100', '-O', '2', '--ksm'])
    notices = '\n'.join(opts.notices)
    for name in ('cache2', 'gevent', 'optimize', 'ksm'):
        assert f'uWSGI option --{name} is not served here' in notices, notices
    assert ('optimize', '2') in _pairs(opts)


def test_opt_json_is_json_whatever_the_values_hold():
    # (written without the json module: every character must still come back as it was)
    odd = 'quote" back\\slash \n\t\x01 é \U0001F600 \udcff'
    opts = parse_args(['--spooler', odd, '--spooler', 'b', '--master', '--import', odd])
    assert json.loads(opts.opt_json()) == {'spooler': [odd, 'b'], 'master': True, 'import': odd}
