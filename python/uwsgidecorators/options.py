"""uWSGI-style command line and ``[uwsgi]`` ini parsing for the ``uwsgidecorators`` master.

The goal is that a uWSGI command line or ini file written for a spooler/task deployment is
accepted as it is: the options we serve take effect, the ones we do not serve (HTTP and WSGI
sockets, ``module``...) each produce one notice line, and nothing is an error except a value we
serve and cannot understand.

Parsing follows uWSGI's rules:

* ``--name value``, ``--name=value``, boolean flags (``--master``), repeatable options (every
  occurrence is kept, in order), short options (``-Q DIR``, ``-M``, ``-p 4``, ``-p4``, ``-Mp 4``);
* a bare ``*.ini`` argument is ``--ini`` (uWSGI guesses the format from the extension);
* ``--ini FILE`` / ``--ini FILE:SECTION`` reads ``key = value`` lines of the ``[uwsgi]`` (or named)
  section, ``;``/``#`` comments, a key without ``=`` is an empty value; ``ini = other.ini`` inside
  a file is expanded in place ("expand asap"); magic variables (``%d``, ``%n``, ``%p``...) are
  replaced while the file is read;
* once everything is collected: ``$(ENV)`` (with ``:-``/``-`` defaults), then ``%(name)``
  placeholders, replaced by the value of the FIRST option of that name (unknown names are left as
  they are, as uWSGI does). ini keys that are not options at all are legal: they are the usual way
  to define placeholders.
* flag values ``false``/``off``/``no``/``0`` turn the flag off (``master = false``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Sequence

__all__ = ['Option', 'Options', 'UsageError', 'parse_args']


class UsageError(Exception):
    """A command line or ini file we cannot act on (missing file, bad number...)."""


FLAG = 'flag'
VALUE = 'value'
OPTIONAL = 'optional'
"""a value only when attached (``--mule=script.py``); bare (``--mule``) it is True"""

# Served options: long name -> (kind, canonical name). Aliases are the names uWSGI accepts too.
_SERVED: dict[str, tuple[str, str]] = {
    'ini': (VALUE, 'ini'),
    'chdir': (VALUE, 'chdir'),
    'pythonpath': (VALUE, 'pythonpath'),
    'python-path': (VALUE, 'pythonpath'),
    'pp': (VALUE, 'pythonpath'),
    'env': (VALUE, 'env'),
    'import': (VALUE, 'import'),
    'pyimport': (VALUE, 'import'),
    'py-import': (VALUE, 'import'),
    'python-import': (VALUE, 'import'),
    'master': (FLAG, 'master'),
    'processes': (VALUE, 'processes'),
    'workers': (VALUE, 'processes'),
    'spooler': (VALUE, 'spooler'),
    'spooler-external': (VALUE, 'spooler-external'),
    'spooler-processes': (VALUE, 'spooler-processes'),
    'spooler-frequency': (VALUE, 'spooler-frequency'),
    'spooler-freq': (VALUE, 'spooler-frequency'),
    'spooler-max-tasks': (VALUE, 'spooler-max-tasks'),
    'spooler-harakiri': (VALUE, 'spooler-harakiri'),
    'spooler-ordered': (FLAG, 'spooler-ordered'),
    'spooler-chdir': (VALUE, 'spooler-chdir'),
    'spooler-import': (VALUE, 'spooler-import'),
    'spooler-pyimport': (VALUE, 'spooler-import'),
    'spooler-py-import': (VALUE, 'spooler-import'),
    'spooler-python-import': (VALUE, 'spooler-import'),
    'spooler-quiet': (FLAG, 'spooler-quiet'),
    'reload-mercy': (VALUE, 'reload-mercy'),
    'harakiri': (VALUE, 'harakiri'),
    'timer': (VALUE, 'timer'),
    'rbtimer': (VALUE, 'rbtimer'),
    'worker-reload-mercy': (VALUE, 'reload-mercy'),
    'pidfile': (VALUE, 'pidfile'),
    'pidfile2': (VALUE, 'pidfile2'),
    'logto': (VALUE, 'logto'),
    'logto2': (VALUE, 'logto2'),
    'log-date': (FLAG, 'log-date'),
    'logdate': (FLAG, 'log-date'),
    'vacuum': (FLAG, 'vacuum'),
    'uid': (VALUE, 'uid'),
    'gid': (VALUE, 'gid'),
    'locks': (VALUE, 'locks'),
    'no-initgroups': (FLAG, 'no-initgroups'),
    'mule': (OPTIONAL, 'mule'),
    'mules': (VALUE, 'mules'),
    'farm': (VALUE, 'farm'),
    'mule-msg-size': (VALUE, 'mule-msg-size'),
    'mule-harakiri': (VALUE, 'mule-harakiri'),
    # served only with the rpc plugin asked for (see rpc_plugin()): else a notice, as before
    'socket': (VALUE, 'socket'),
    'uwsgi-socket': (VALUE, 'socket'),
    'plugin': (VALUE, 'plugin'),
    'plugins': (VALUE, 'plugin'),
    'listen': (VALUE, 'listen'),
    'socket-timeout': (VALUE, 'socket-timeout'),
    'rpc-max': (VALUE, 'rpc-max'),
    'touch-reload': (VALUE, 'touch-reload'),
    'touch-spoolers-reload': (VALUE, 'touch-spoolers-reload'),
    'py-autoreload': (VALUE, 'py-autoreload'),
    'py-auto-reload': (VALUE, 'py-autoreload'),
    'python-autoreload': (VALUE, 'py-autoreload'),
    'python-auto-reload': (VALUE, 'py-autoreload'),
    'py-auto-reload-ignore': (VALUE, 'py-auto-reload-ignore'),
    'erlang': (VALUE, 'erlang'),
    'erlang-cookie': (VALUE, 'erlang-cookie'),
    # ours, not uWSGI's
    'rpc-max-connections': (VALUE, 'rpc-max-connections'),
    'control-socket': (VALUE, 'control-socket'),
    'ignore-unknown-options': (FLAG, 'ignore-unknown-options'),
    'spooler-durable': (FLAG, 'spooler-durable'),
    'spooler-retry-delay': (VALUE, 'spooler-retry-delay'),
    'spooler-retry-max-delay': (VALUE, 'spooler-retry-max-delay'),
    'spooler-max-attempts': (VALUE, 'spooler-max-attempts'),
    'spooler-trusted-user': (VALUE, 'spooler-trusted-user'),
    'mule-send-timeout': (VALUE, 'mule-send-timeout'),
    'help': (FLAG, 'help'),
    'version': (FLAG, 'version'),
}

_WEB = 'this runtime serves spoolers and workers, not requests: keep your web server for that'
_APP = 'no WSGI application is loaded; use --import for your task modules'

# uWSGI options we know but do not serve: name -> (kind, why). Each gets one notice line.
_NOT_SERVED: dict[str, tuple[str, str]] = {
    'http': (VALUE, _WEB),
    'http-socket': (VALUE, _WEB),
    'https': (VALUE, _WEB),
    'https-socket': (VALUE, _WEB),
    'fastcgi-socket': (VALUE, _WEB),
    'scgi-socket': (VALUE, _WEB),
    'shared-socket': (VALUE, _WEB),
    'chmod-socket': (VALUE, _WEB),
    'chown-socket': (VALUE, _WEB),
    'static-map': (VALUE, _WEB),
    'route': (VALUE, _WEB),
    'buffer-size': (VALUE, _WEB),
    'post-buffering': (VALUE, _WEB),
    'max-requests': (VALUE, _WEB),
    'module': (VALUE, _APP),
    'wsgi': (VALUE, _APP),
    'wsgi-file': (VALUE, _APP),
    'file': (VALUE, _APP),
    'callable': (VALUE, _APP),
    'mount': (VALUE, _APP),
    'manage-script-name': (FLAG, _APP),
    'need-app': (FLAG, _APP),
    'lazy-apps': (FLAG, _APP),
    'lazy': (FLAG, _APP),
    'single-interpreter': (FLAG, 'there is one interpreter per process anyway'),
    'home': (VALUE, 'run the uwsgidecorators of the virtualenv you want instead'),
    'virtualenv': (VALUE, 'run the uwsgidecorators of the virtualenv you want instead'),
    'venv': (VALUE, 'run the uwsgidecorators of the virtualenv you want instead'),
    'pyhome': (VALUE, 'run the uwsgidecorators of the virtualenv you want instead'),
    'threads': (VALUE, 'workers do not serve requests, so they have no request threads'),
    'enable-threads': (FLAG, 'Python threads always work here'),
    'die-on-term': (FLAG, 'SIGTERM always shuts the master down here'),
    'daemonize': (VALUE, 'run it under your process supervisor instead'),
    'disable-logging': (FLAG, 'there is no request log'),
    'stats': (VALUE, 'not implemented yet'),
    'memory-report': (FLAG, 'not implemented yet'),
    'thunder-lock': (FLAG, 'there is no accept() to serialize'),
    'cheaper': (VALUE, 'worker count is fixed'),
    'procname-prefix': (VALUE, 'not implemented yet'),
    'procname-prefix-spaced': (VALUE, 'not implemented yet'),
    'auto-procname': (FLAG, 'not implemented yet'),
    'no-orphans': (FLAG, 'children always follow the master here'),
    'strict': (FLAG, 'an option no uWSGI knows is an error here already, and placeholders stay allowed'),
}

# Short options: letter -> long name (their kind is the long name's).
_SHORT: dict[str, str] = {
    'Q': 'spooler',
    's': 'socket',
    'M': 'master',
    'p': 'processes',
    'w': 'module',
    'H': 'home',
    'T': 'enable-threads',
    't': 'harakiri',
    'd': 'daemonize',
    'L': 'disable-logging',
    'b': 'buffer-size',
    'i': 'single-interpreter',
    'h': 'help',
}

_FALSE_WORDS = {'false', 'off', 'no', '0'}


def kind_of(name: str) -> str | None:
    if name in _SERVED:
        return _SERVED[name][0]
    if name in _NOT_SERVED:
        return _NOT_SERVED[name][0]
    return None


def canonical(name: str) -> str | None:
    """Canonical name of a served option, None when we do not serve it."""
    entry = _SERVED.get(name)
    return entry[1] if entry else None


def flag_value(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    return value.strip().lower() not in _FALSE_WORDS


class Option:
    __slots__ = ('name', 'value', 'origin')

    name: str
    """the long name as written (``workers``, not ``processes``), which is what ``uwsgi.opt`` shows"""
    value: str | bool
    """``True`` for a flag given without a value"""
    origin: str
    """where it came from, for messages: ``argv`` or ``FILE:LINE``"""

    def __init__(self, name: str, value: str | bool, origin: str) -> None:
        self.name = name
        self.value = value
        self.origin = origin


class Options:
    __slots__ = ('items', 'notices', 'positional', 'errors')

    items: list[Option]
    notices: list[str]
    positional: list[str]
    errors: list[str]
    """options no uWSGI knows: an error unless ``ignore-unknown-options`` is set"""

    def __init__(
        self,
        items: list[Option] | None = None,
        notices: list[str] | None = None,
        positional: list[str] | None = None,
        errors: list[str] | None = None,
    ) -> None:
        self.items = [] if items is None else items
        self.notices = [] if notices is None else notices
        self.positional = [] if positional is None else positional
        self.errors = [] if errors is None else errors

    def values(self, canon: str) -> list[str | bool]:
        return [o.value for o in self.items if canonical(o.name) == canon]

    def last(self, canon: str) -> str | bool | None:
        vals = self.values(canon)
        return vals[-1] if vals else None

    def flag(self, canon: str) -> bool:
        vals = self.values(canon)
        return flag_value(vals[-1]) if vals else False

    def strings(self, canon: str) -> list[str]:
        out = []
        for v in self.values(canon):
            if v is True or v == '':
                raise UsageError(f'option --{canon} needs a value')
            out.append(str(v))
        return out

    def number(self, canon: str, default: float, *, integer: bool = False, minimum: float = 0) -> float:
        raw = self.last(canon)
        if raw is None:
            return default
        if raw is True:
            raise UsageError(f'option --{canon} needs a number')
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = 'an integer' if integer else 'a number'
            raise UsageError(f'option --{canon} must be {kind}, got {raw!r}') from None
        if value < minimum:
            raise UsageError(f'option --{canon} must be >= {minimum}, got {raw!r}')
        return value

    def opt_dict(self) -> dict[str, str | bool | list[str]]:
        """``uwsgi.opt`` source, as the master exports it in UWSGIDECORATORS_OPT (repeats -> list)."""
        out: dict[str, str | bool | list[str]] = {}
        for o in self.items:
            value: str | bool = o.value
            if o.name in out:
                prev = out[o.name]
                if isinstance(prev, list):
                    prev.append(str(value))
                else:
                    out[o.name] = [str(prev), str(value)]
            else:
                out[o.name] = value
        return out

    def opt_json(self) -> str:
        # Written by hand: json would be one more module in the master's heap, for this alone.
        items = []
        for key, value in self.opt_dict().items():
            if isinstance(value, bool):
                encoded = 'true' if value else 'false'
            elif isinstance(value, list):
                encoded = '[' + ', '.join(_json_string(v) for v in value) + ']'
            else:
                encoded = _json_string(value)
            items.append(f'{_json_string(key)}: {encoded}')
        return '{' + ', '.join(items) + '}'


def _json_string(text: str) -> str:
    """A JSON string for ``text``, ASCII only (as ``json.dumps``: other characters escaped)."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0x20 <= code < 0x7F and ch != '"' and ch != '\\':
            out.append(ch)
        elif code < 0x10000:
            out.append(f'\\u{code:04x}')
        else:  # a surrogate pair
            code -= 0x10000
            out.append(f'\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}')
    return '"' + ''.join(out) + '"'


# ------------------------------------------------------------------------------------------------
# argv


def parse_args(argv: Sequence[str], *, environ: dict[str, str] | None = None) -> Options:
    """Parse a uWSGI-style command line (without the program name)."""
    env = dict(os.environ if environ is None else environ)
    opts = Options()
    raw: list[Option] = []
    args = list(argv)
    i = 0

    def take_value(name: str, inline: str | None, shown: str) -> str | bool:
        nonlocal i
        kind = kind_of(name)
        if inline is not None:
            return inline
        if kind in (FLAG, OPTIONAL):
            return True
        if kind == VALUE:
            if i >= len(args):
                raise UsageError(f'option {shown} requires a value')
            value = args[i]
            i += 1
            return value
        # Unknown option: uWSGI would know its arity; we guess from the next word.
        if i < len(args) and not args[i].startswith('-'):
            value = args[i]
            i += 1
            return value
        return True

    while i < len(args):
        arg = args[i]
        i += 1
        if arg == '--':
            opts.positional.extend(args[i:])
            break
        if arg.startswith('--'):
            body = arg[2:]
            name, eq, inline = body.partition('=')
            value = take_value(name, inline if eq else None, '--' + name)
            _add(raw, name, value, 'argv', opts, env)
        elif arg.startswith('-') and len(arg) > 1:
            letters = arg[1:]
            j = 0
            while j < len(letters):
                letter = letters[j]
                j += 1
                long_name = _SHORT.get(letter) or uwsgi_short_options().get(letter)
                if long_name is None:
                    opts.errors.append(f'unknown option -{letter} (argv): no uWSGI option has this letter')
                    continue
                if kind_of(long_name) in (VALUE, None):  # None: a uWSGI option we do not know the arity of
                    rest = letters[j:]
                    value = take_value(long_name, rest if rest else None, '-' + letter)
                    _add(raw, long_name, value, 'argv', opts, env)
                    break
                _add(raw, long_name, True, 'argv', opts, env)
        elif arg.endswith('.ini') or ('.ini:' in arg):
            # uWSGI picks the config format from the extension of a bare argument.
            _add(raw, 'ini', arg, 'argv', opts, env)
        else:
            opts.positional.append(arg)
    for p in opts.positional:
        opts.notices.append(f'uwsgidecorators: argument {p!r} is not an option or an .ini file, ignored')
    opts.items = _expand(raw, env)
    _add_notices(opts, raw)
    if opts.errors:
        if not opts.flag('ignore-unknown-options'):
            raise UsageError(
                '; '.join(opts.errors) + ' (--ignore-unknown-options, or ignore-unknown-options = true in the ini '
                'file, starts anyway: for keys your code reads from uwsgi.opt)'
            )
        opts.notices.extend(f'uwsgidecorators: {error} (ignored: --ignore-unknown-options)' for error in opts.errors)
        opts.errors = []
    return opts


def _add(raw: list[Option], name: str, value: str | bool, origin: str, opts: Options, env: dict[str, str]) -> None:
    raw.append(Option(name, value, origin))
    if name == 'ini':
        if value is True or value == '':
            raise UsageError(f'{origin}: option --ini needs a file name')
        _read_ini(str(value), raw, opts, env, depth=0)


# ------------------------------------------------------------------------------------------------
# ini

def _magic_table(path: str, asked: str, section: str) -> dict[str, str]:
    absolute = os.path.abspath(path)
    directory = os.path.dirname(absolute)
    filename = os.path.basename(absolute)
    stem, ext = os.path.splitext(filename)
    now = time.time()
    try:
        import pwd

        username = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        username = str(os.getuid())
    try:
        import grp

        groupname = grp.getgrgid(os.getgid()).gr_name
    except (ImportError, KeyError):
        groupname = str(os.getgid())
    table = {
        'v': os.getcwd(),
        'V': '2.0.21-uwsgidecorators-rs',
        'h': socket.gethostname(),
        'o': asked,
        'p': absolute,
        's': filename,
        'd': directory.rstrip('/') + '/',
        'e': ext,
        'n': stem,
        'c': os.path.basename(directory),
        't': str(int(now)),
        'T': str(int(now * 1_000_000)),
        'x': f'{asked}:{section}' if section != 'uwsgi' else asked,
        'k': str(os.cpu_count() or 1),
        'u': str(os.getuid()),
        'U': username,
        'g': str(os.getgid()),
        'G': groupname,
        '%': '%',
    }
    # Without template configs the "first non-template file" variants are the same file.
    for lower, upper in (
        ('o', 'O'),
        ('p', 'P'),
        ('s', 'S'),
        ('d', 'D'),
        ('e', 'E'),
        ('n', 'N'),
        ('c', 'C'),
        ('x', 'X'),
    ):
        table[upper] = table[lower]
    return table


def _read_ini(spec: str, raw: list[Option], opts: Options, env: dict[str, str], depth: int) -> None:
    if depth > 16:
        raise UsageError(f'ini files include each other too deeply (at {spec})')
    path, section = spec, 'uwsgi'
    colon = spec.rfind(':')
    if colon > 0:
        path = spec[:colon]
        if spec[colon + 1 :]:
            section = spec[colon + 1 :]
    try:
        with open(path, encoding='utf-8') as fh:
            text = fh.read()
    except OSError as exc:
        raise UsageError(f'unable to read ini file {path}: {exc.strerror or exc}') from None
    magic = _magic_table(path, path, section)
    import re  # ini files only (each module here is in the master's heap, which its children share)

    text = re.sub(r'%(.)', lambda m: magic.get(m.group(1), m.group(0)), text, flags=re.DOTALL)
    current = ''
    found = False
    for lineno, line in enumerate(text.split('\n'), 1):
        stripped = line.strip(' \t\r')
        if not stripped:
            continue
        if stripped.startswith('['):
            current = stripped[1:-1] if stripped.endswith(']') else stripped[1:]
            continue
        if stripped[0] in ';#':
            continue
        if current != section:
            continue
        found = True
        key, _eq, value = stripped.partition('=')
        key = key.rstrip(' \t\r')
        value = value.strip(' \t\r')
        origin = f'{path}:{lineno}'
        raw.append(Option(key, value, origin))
        if key == 'ini':
            if not value:
                raise UsageError(f'{origin}: ini needs a file name')
            _read_ini(value, raw, opts, env, depth + 1)
    if not found:
        opts.notices.append(f'uwsgidecorators: *** WARNING: cannot find section [{section}] in ini file {path} ***')


# ------------------------------------------------------------------------------------------------
# substitutions

_PLACEHOLDER = r'%\(([^)]*)\)'


def _env_sub(value: str, env: dict[str, str]) -> str:
    if '$(' not in value:
        return value
    import re

    def repl(m: re.Match[str]) -> str:
        expr = m.group(1)
        if ':-' in expr:
            name, _, default = expr.partition(':-')
            return env.get(name) or default
        if '-' in expr:
            name, _, default = expr.partition('-')
            if name in env:
                return env[name]
            return default
        # uWSGI replaces an unset variable with nothing.
        return env.get(expr, '')

    return re.sub(r'\$\(([^)]*)\)', repl, value)


def _expand(raw: list[Option], env: dict[str, str]) -> list[Option]:
    items = [Option(o.name, _env_sub(o.value, env) if isinstance(o.value, str) else o.value, o.origin) for o in raw]

    def lookup(key: str) -> str | None:
        for other in items:  # the FIRST option of that name, as uWSGI's lookup does
            if other.name == key:
                return 'true' if other.value is True else str(other.value)
        return None

    for idx, item in enumerate(items):
        if not isinstance(item.value, str) or '%(' not in item.value:
            continue
        import re

        value, pos, rounds = item.value, 0, 0
        while (m := re.compile(_PLACEHOLDER).search(value, pos)) is not None:
            replacement = lookup(m.group(1))
            if replacement is None:
                pos = m.end()  # unknown name: left as written
                continue
            rounds += 1
            if rounds > 256:  # `a = %(a)` would loop for ever in uWSGI
                raise UsageError(f'{item.origin}: placeholders in {item.name} = {item.value!r} never stop expanding')
            # Re-scan from the replacement: a later option's raw value may hold placeholders too.
            value = value[: m.start()] + replacement + value[m.end() :]
            pos = m.start()
        items[idx] = Option(item.name, value, item.origin)
    return items


def _plugin_names(opts: Options) -> list[str]:
    names: list[str] = []
    for value in opts.values('plugin'):
        if isinstance(value, str):
            # uWSGI's lists: 'python3,rpc', 'python3 rpc', and the 'MODIFIER:name' form
            names.extend(n.rpartition(':')[2] for n in value.replace(',', ' ').split() if n)
    return names


def rpc_plugin(opts: Options) -> bool:
    """The rpc plugin is asked for (``--plugin rpc``, ``plugins = python3,rpc``): as in Debian's
    modular uWSGI, only then do --socket/--uwsgi-socket serve uWSGI RPC (modifier1 173)."""
    return 'rpc' in _plugin_names(opts)


_SOCKET_WHY = (
    'this runtime serves spoolers and workers, not requests: keep your web server for that; '
    'to serve uWSGI RPC there, add --plugin rpc'
)


def _add_notices(opts: Options, raw: list[Option]) -> None:
    rpc = rpc_plugin(opts)
    for name in dict.fromkeys(_plugin_names(opts)):
        if name != 'rpc' and not name.startswith('python'):
            opts.notices.append(
                f'uwsgidecorators: plugin {name} is not loaded (Python is built in; of the plugins only rpc means '
                'something here: it serves uWSGI RPC on --socket), ignored'
            )
    referenced = set()
    for text in _all_values(raw):
        if '%(' in text:
            import re

            referenced.update(re.findall(_PLACEHOLDER, text))
    seen: set[str] = set()
    for o in opts.items:
        if o.name in seen:
            continue
        seen.add(o.name)
        if canonical(o.name) == 'socket' and not rpc:
            opts.notices.append(f'uwsgidecorators: option --{o.name} is not served ({_SOCKET_WHY}), ignored')
            continue
        if o.name in _SERVED:
            continue
        if o.name in _NOT_SERVED:
            why = _NOT_SERVED[o.name][1]
            opts.notices.append(f'uwsgidecorators: option --{o.name} is not served ({why}), ignored')
        elif o.origin != 'argv' and o.name in referenced:
            continue  # an ini key used as a %(placeholder): that is its whole purpose
        elif o.name in uwsgi_options():
            opts.notices.append(f'uwsgidecorators: uWSGI option --{o.name} is not served here, ignored')
        else:
            # No uWSGI knows it: a typo (`imprt = tasks`) would start a master that runs nothing.
            import difflib

            near = difflib.get_close_matches(o.name, [*_SERVED, *uwsgi_options()], n=1)
            hint = f'; did you mean --{near[0]}?' if near else ''
            opts.errors.append(f'unknown option --{o.name} ({o.origin}): no uWSGI version knows it{hint}')


_UWSGI_OPTIONS: tuple[frozenset[str], dict[str, str]] | None = None


def _load_uwsgi_options() -> tuple[frozenset[str], dict[str, str]]:
    global _UWSGI_OPTIONS
    if _UWSGI_OPTIONS is None:
        longs: set[str] = set()
        shorts: dict[str, str] = {}
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'uwsgi_options.txt')
        with open(path, encoding='utf-8') as fh:
            for line in fh:
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                if line.startswith('-'):
                    letter, _, name = line[1:].partition(' ')
                    shorts.setdefault(letter, name)
                else:
                    longs.add(line)
        _UWSGI_OPTIONS = (frozenset(longs), shorts)
    return _UWSGI_OPTIONS


def uwsgi_options() -> frozenset[str]:
    """Every option name of uWSGI (core and plugins), from ``uwsgi_options.txt``, which
    ``scripts/gen_uwsgi_options.py`` generates from the real uWSGI binary."""
    return _load_uwsgi_options()[0]


def uwsgi_short_options() -> dict[str, str]:
    """uWSGI's one-letter options: letter -> one of its long names."""
    return _load_uwsgi_options()[1]


def _all_values(items: Iterable[Option]) -> list[str]:
    return [o.value for o in items if isinstance(o.value, str)]
