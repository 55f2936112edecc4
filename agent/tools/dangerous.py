"""Whether a shell command line could wreck the machine or run code it did not show: read from its
parse tree (tree-sitter's bash grammar), not from patterns over its text.

The command is walked the way the shell would run it: `sh -c`/`bash -lc -- TEXT`, `eval` and here-docs
fed to a shell are read in turn; wrappers (`sudo`, `env`, `busybox`, `xargs`, `find -exec`...) are
seen through; `cd` and plain variable assignments are followed, with every value a branch or a loop
could leave (`x=/; rm -rf $x`, `cd / && rm -rf ./*`). A word known only at run time (`$(...)`, a
variable from the environment) is no path at all: a recursive `rm` of one is dangerous. Text the
walk cannot see into (`eval "$x"`, a command named by a variable, a line that does not parse) is
dangerous too, but only when commands are not sandboxed: in the sandbox, it can harm only the
workspace, which is what the rest of the check guards.

A check for a second look, not a proof: it asks the user even when they said --yes.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

# A word's value: its text, or None when only the running shell knows it.
Value = str | None
STREAM = "\0stream"  # the value of <(...): a pipe from another process, not a path

# The root, the top-level system directories and a few below /usr and /var: recursive rm/chmod/chown
# there (or of everything in them) wrecks the machine. Deeper paths (/tmp/x, /usr/local/lib/foo) are
# ordinary work and must not cry wolf. The home directory and every directory above it count too.
_SYSTEM_DIRS = (
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/usr",
    "/var",
    "/usr/bin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/sbin",
    "/usr/share",
    "/usr/local",
    "/var/lib",
)
# Devices that are not disks; writing anywhere else under /dev may destroy one.
_HARMLESS_DEVICES = (
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/stdin",
    "/dev/tty",
    "/dev/fd/*",
    "/dev/pts/*",
    "/dev/shm/*",
)
_STDIN_PATHS = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
_SHELLS = frozenset({"sh", "bash", "rbash", "zsh", "dash", "ksh", "mksh", "lksh", "ash", "yash", "posh", "fish"})
# Interpreters that read their program from stdin when given no program: option letters that take
# the program inline, and options whose value is the next word.
_INTERPRETERS: dict[str, tuple[str, frozenset[str]]] = {
    "python": ("cm", frozenset({"-W", "-X", "-Q"})),
    "pypy": ("cm", frozenset({"-W", "-X"})),
    "perl": ("eE", frozenset({"-I", "-M", "-m"})),
    "ruby": ("e", frozenset({"-I", "-r"})),
    "node": ("ep", frozenset({"-r", "--require", "--import"})),
    "nodejs": ("ep", frozenset({"-r", "--require"})),
    "deno": ("", frozenset()),
    "php": ("rR", frozenset({"-c", "-d"})),
    "lua": ("e", frozenset({"-l"})),
    "luajit": ("e", frozenset({"-l"})),
    "tclsh": ("", frozenset()),
    "Rscript": ("e", frozenset()),
}
_INLINE_LONG = frozenset({"--eval", "--print", "--command"})
# Programs that run the rest of their arguments as a command: options whose value is the next word,
# and how many operands come before the command.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (
        frozenset(
            {
                "-u",
                "-g",
                "-h",
                "-p",
                "-C",
                "-D",
                "-r",
                "-t",
                "-U",
                "-T",
                "--user",
                "--group",
                "--host",
                "--prompt",
                "--chdir",
                "--role",
                "--type",
                "--other-user",
                "--close-from",
            }
        ),
        0,
    ),
    "doas": (frozenset({"-u", "-C"}), 0),
    "nohup": (frozenset(), 0),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0),
    "setsid": (frozenset(), 0),
    "chrt": (frozenset(), 1),
    "taskset": (frozenset(), 1),
    "flock": (frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}), 1),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "unbuffer": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "command": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "busybox": (frozenset(), 0),
    "toybox": (frozenset(), 0),
    "strace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-E"}), 0),
    "ltrace": (frozenset({"-o", "-e", "-p", "-s", "-u"}), 0),
    "catchsegv": (frozenset(), 0),
    "fakeroot": (frozenset({"-l", "-s", "-i"}), 0),
}
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_GLOB = re.compile(r"[*?\[]")
MAX_DEPTH = 8  # sh -c inside sh -c...: deeper than this is not a command anyone types
MAX_VALUES = 32  # values one word may have before it counts as unknown
MAX_STEPS = 5_000  # nodes walked (loops twice, functions at each call): past this, it counts as dangerous


def dangerous_reason(
    command: str, *, cwd: str | None = None, home: str | None = None, sandboxed: bool = False
) -> str | None:
    """Why `command` could destroy the system or run code from elsewhere unseen, or None.

    `cwd` is where it starts (None: anywhere, even /), `home` what `~` is (None: unknown, only `~`
    itself counts as home); `sandboxed`: text the check cannot see into is not dangerous by itself."""
    walk = _Walk(home, sandboxed)
    walk.script(command, _State(frozenset({cwd})))
    return walk.verdict()


@functools.cache
def _parser() -> Parser:
    import tree_sitter_bash  # lazily: only when the model runs a command
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


@dataclass(frozen=True)
class _State:
    """What the shell may know at one point: every directory it may be in (None: unknown) and every
    value a variable may have; what its stdin is; the functions defined so far."""

    cwds: frozenset[Value]
    variables: tuple[tuple[str, frozenset[Value]], ...] = ()
    stdin: str = ""  # "": nothing (hermes gives /dev/null); "pipe"; STREAM; else here-doc text
    functions: tuple[tuple[str, Node], ...] = field(default=(), compare=False)

    def get(self, name: str, home: str) -> frozenset[Value]:
        for key, values in self.variables:
            if key == name:
                return values
        if name == "HOME":
            return frozenset({home})
        if name == "PWD":
            return self.cwds
        return frozenset({None})

    def set(self, name: str, values: Iterable[Value]) -> _State:
        variables = {**dict(self.variables), name: _cap(values)}
        return _State(self.cwds, tuple(sorted(variables.items())), self.stdin, self.functions)

    def at(self, cwds: Iterable[Value]) -> _State:
        return _State(_cap(cwds), self.variables, self.stdin, self.functions)

    def reading(self, stdin: str) -> _State:
        return _State(self.cwds, self.variables, stdin, self.functions)

    def define(self, name: str, body: Node) -> _State:
        return _State(self.cwds, self.variables, self.stdin, (*self.functions, (name, body)))

    def function(self, name: str) -> Node | None:
        return next((body for key, body in reversed(self.functions) if key == name), None)


def _cap(values: Iterable[Value]) -> frozenset[Value]:
    values = frozenset(values)
    return values if len(values) <= MAX_VALUES else frozenset({None})


def _merge(states: Sequence[_State], home: str) -> _State:
    """Where the shell may be after one of several paths was taken."""
    first = states[0]
    functions = tuple({k: v for s in states for k, v in s.functions}.items())
    if all(s == first for s in states[1:]):
        return _State(first.cwds, first.variables, first.stdin, functions)
    names = sorted({k for s in states for k, _ in s.variables})
    variables = tuple((name, _cap(v for s in states for v in s.get(name, home))) for name in names)
    return _State(_cap(c for s in states for c in s.cwds), variables, first.stdin, functions)


def _widen(before: _State, after: _State, home: str) -> _State:
    """A loop still changing things after two rounds: what it changed becomes unknown."""
    state = after
    if after.cwds != before.cwds:
        state = state.at({*after.cwds, None})
    for name, values in after.variables:
        if values != before.get(name, home):
            state = state.set(name, {*values, None})
    return state


class _Walk:
    def __init__(self, home: str | None, sandboxed: bool) -> None:
        self.home = home.rstrip("/") or "/" if home else "~"
        self.sandboxed = sandboxed
        self.reasons: list[str] = []
        self.opaque: list[str] = []  # what could not be seen into
        self.depth = 0
        self.steps = 0
        self.calling: set[str] = set()
        critical = [*_SYSTEM_DIRS, *([] if self.home == "~" else _ancestors(self.home)), self.home]
        self._critical = [[c for c in d.split("/") if c] for d in critical]
        self._home_parts = [c for c in self.home.split("/") if c]

    def verdict(self) -> str | None:
        if self.reasons:
            return self.reasons[0]
        if self.opaque and not self.sandboxed:
            return f"cannot be checked: {self.opaque[0]}"
        return None

    # --- scripts and statements ---------------------------------------------------------------------

    def script(self, text: str, state: _State) -> _State:
        if self.depth >= MAX_DEPTH:
            self.opaque.append("shell text nested too deep")
            return state
        tree = _parser().parse(text.encode("utf-8", "surrogateescape"))
        self.depth += 1
        try:
            if tree.root_node.has_error:
                self.opaque.append("it does not parse as a shell command line")
                if "((" in text:  # to dash, the /bin/sh of Debian, `((cmd))` is two subshells, not arithmetic
                    self.script(text.replace("((", "( (").replace("))", ") )"), state)
            return self.run(tree.root_node, state)
        finally:
            self.depth -= 1

    def sequence(self, nodes: Iterable[Node], state: _State) -> _State:
        for node in nodes:
            state = self.run(node, state)
        return state

    def run(self, node: Node, state: _State) -> _State:
        self.steps += 1
        if self.steps > MAX_STEPS:  # nested loops and calls multiply the walk; a command line cannot hang hermes
            if self.steps == MAX_STEPS + 1:  # no command anyone types gets here: what it hides is not seen
                self.reasons.append("it is too intricate to check")
            return state
        kind = node.type
        if kind in ("comment", "heredoc_body", "heredoc_start", "heredoc_end"):
            return state
        if kind == "command":
            return self.command(node, state)
        if kind == "variable_assignment":
            return self.assign(node, state)
        if kind == "declaration_command":
            for child in node.named_children:
                state = self.assign(child, state) if child.type == "variable_assignment" else state
            return state
        if kind == "unset_command":
            for child in node.named_children:
                state = state.set(_text(child), {None})
            return state
        if kind == "list":
            left, right = node.named_children[0], node.named_children[-1]
            after_left = self.run(left, state)
            return _merge([after_left, self.run(right, after_left)], self.home)  # the right side may not run
        if kind == "pipeline":
            for i, stage in enumerate(node.named_children):
                self.run(stage, state.reading("pipe") if i else state)
            return state  # every stage runs in a subshell
        if kind in ("subshell", "command_substitution", "process_substitution"):
            self.sequence(node.named_children, state)
            return state
        if kind == "redirected_statement":
            return self.redirected(node, state)
        if kind == "function_definition":
            return self.function(node, state)
        if kind == "if_statement":
            return self.branches(node, state)
        if kind == "case_statement":
            value = node.child_by_field_name("value")
            if value is not None:
                self.values(value, state)
            items = [c for c in node.named_children if c.type == "case_item"]
            outcomes = [state] + [
                self.sequence((c for c in item.named_children if c not in item.children_by_field_name("value")), state)
                for item in items
            ]
            return _merge(outcomes, self.home)
        if kind in ("while_statement", "until_statement", "for_statement", "c_style_for_statement"):
            return self.loop(node, state)
        if kind in _WORDS:
            self.values(node, state)
            return state
        return self.sequence(node.named_children, state)  # program, { ...; }, ! cmd, [[ ]], do_group...

    def branches(self, node: Node, state: _State) -> _State:
        conditions = [c for c in node.children_by_field_name("condition") if c.is_named]
        state = self.sequence(conditions, state)
        then = [c for c in node.named_children if c not in conditions and c.type not in ("elif_clause", "else_clause")]
        outcomes = [state, self.sequence(then, state)]
        outcomes += [
            self.sequence(c.named_children, state)
            for c in node.named_children
            if c.type in ("elif_clause", "else_clause")
        ]
        return _merge(outcomes, self.home)

    def loop(self, node: Node, state: _State) -> _State:
        variable = node.child_by_field_name("variable")
        if variable is not None:
            words = [c for c in node.children_by_field_name("value") if c.is_named]
            values = [v for w in words for split in self.arguments(w, state) for v in split] if words else [None]
            state = state.set(_text(variable), values)
        body = [c for c in node.named_children if c != variable and c.type not in _WORDS]
        once = _merge([state, self.sequence(body, state)], self.home)
        twice = _merge([once, self.sequence(body, once)], self.home)
        return _widen(once, twice, self.home)

    def function(self, node: Node, state: _State) -> _State:
        name_node = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        if name_node is None or body is None:
            return state
        name = _text(name_node)
        if _calls_itself_in_parallel(name, body):
            self.reasons.append("fork bomb")
        self.run(body, state)  # as if called here: what it does is dangerous wherever it is called
        return state.define(name, body)

    def redirected(self, node: Node, state: _State) -> _State:
        stdin = state.stdin
        for redirect in node.children_by_field_name("redirect"):
            stdin = self.redirect(redirect, state, stdin)
        for child in node.named_children:  # redirections the grammar left outside the field
            if child.type.endswith("_redirect") and child not in node.children_by_field_name("redirect"):
                stdin = self.redirect(child, state, stdin)
        body = node.child_by_field_name("body")
        return self.run(body, state.reading(stdin)) if body is not None else state

    def redirect(self, node: Node, state: _State, stdin: str) -> str:
        """Checks a redirection; returns the stdin it leaves."""
        if node.type == "heredoc_redirect":
            body = next((c for c in node.named_children if c.type == "heredoc_body"), None)
            return _text(body) if body is not None else ""
        if node.type == "herestring_redirect":
            values = [v for c in node.named_children for v in self.values(c, state)]
            return values[0] if len(values) == 1 and values[0] is not None else "pipe"
        operator = next((_text(c) for c in node.children if not c.is_named), "")
        destination = node.child_by_field_name("destination")
        targets = self.values(destination, state) if destination is not None else []
        if operator in ("<", "<>"):
            return STREAM if STREAM in targets else ("pipe" if None in targets else "")
        if operator in (">", ">>", ">|", "&>", "&>>", ">&", "&>|"):
            for target in targets:
                if target is not None and not target.isdigit() and target != "-":
                    self.device("redirects output onto {}", target, state)
        return stdin

    def assign(self, node: Node, state: _State) -> _State:
        name = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        values = self.values(value, state) if value is not None else [""]
        if name is None:
            return state
        appends = any(_text(c) == "+=" for c in node.children)
        return state.set(_text(name), [None] if appends else values)

    # --- words --------------------------------------------------------------------------------------

    def values(self, node: Node, state: _State) -> list[Value]:
        """Every value the word may have; expansions inside it are walked for what they run."""
        kind = node.type
        if kind in ("word", "number", "command_name"):
            if kind == "command_name":
                return self.values(node.named_children[0], state) if node.named_children else [_text(node)]
            return [re.sub(r"\\(.)", r"\1", _text(node))]
        if kind == "raw_string":
            return [_text(node)[1:-1]]
        if kind == "ansi_c_string":
            try:
                return [codecs.decode(_text(node)[2:-1].encode("latin-1", "backslashreplace"), "unicode_escape")]
            except (UnicodeDecodeError, ValueError):
                return [None]
        if kind == "string_content":
            return [re.sub(r'\\([$`"\\])', r"\1", _text(node))]
        if kind in ("string", "translated_string", "concatenation"):
            parts = [self.values(c, state) for c in node.named_children]
            if kind == "concatenation" and _text(node).count("{") and "," in _text(node):
                return _expand_braces(_join(parts))
            return _join(parts)
        if kind in ("simple_expansion", "expansion"):
            named = node.named_children
            if (
                len(named) == 1
                and named[0].type in ("variable_name", "special_variable_name")
                and (kind == "simple_expansion" or len(node.children) == 3)
            ):
                return list(state.get(_text(named[0]), self.home))
            for child in named:
                self.values(child, state)
            return [None]
        if kind in ("command_substitution", "process_substitution"):
            self.run(node, state)
            if kind == "process_substitution":
                return [STREAM]
            return [self._mktemp(node, state)]
        for child in node.named_children:  # arithmetic and the rest: only what they run matters
            self.run(child, state)
        return [None]

    def arguments(self, node: Node, state: _State) -> list[tuple[Value, ...]]:
        """The words one argument may become: an unquoted expansion is split as the shell does, and a
        brace list expanded."""
        values = self.values(node, state)
        if node.type in ("simple_expansion", "expansion", "command_substitution"):
            return [tuple(v.split()) if v is not None and v.strip() else (v,) for v in values]
        if node.type == "word" and "," in _text(node) and "{" in _text(node):
            return [tuple(_expand_braces([v])) for v in values]
        return [(v,) for v in values]

    def _mktemp(self, node: Node, state: _State) -> Value:
        """What `$(mktemp [-d] [-p DIR] [TEMPLATE])` prints: a new name in DIR or /tmp; and `$(pwd)`.
        Other command substitutions are known only at run time."""
        commands = [c for c in node.named_children if c.type != "comment"]
        if len(commands) != 1 or commands[0].type != "command":
            return None
        name = commands[0].child_by_field_name("name")
        args = [v for a in commands[0].children_by_field_name("argument") for v in self.values(a, state)]
        if name is not None and _text(name) == "pwd" and not args and len(state.cwds) == 1:
            return next(iter(state.cwds))
        if name is None or _text(name) != "mktemp" or None in args:
            return None
        directory, template = "/tmp", "tmp.XXXXXXXXXX"
        words = [a for a in args if a is not None]
        for i, word in enumerate(words):
            if word in ("-p", "--tmpdir") and i + 1 < len(words):
                directory = words[i + 1]
            elif word.startswith("--tmpdir="):
                directory = word.partition("=")[2]
            elif not word.startswith("-") and (i == 0 or words[i - 1] not in ("-p", "--tmpdir", "--suffix")):
                template = word
        if "/" in template or not directory.startswith("/") or "X" not in template:
            return None
        return f"{directory.rstrip('/')}/{template}"

    # --- commands -----------------------------------------------------------------------------------

    def command(self, node: Node, state: _State) -> _State:
        name = node.child_by_field_name("name")
        for child in node.named_children:
            if child.type == "variable_assignment":  # `X=1 cmd`: only for cmd, but its value may run things
                self.assign(child, state)
            elif child.type.endswith("_redirect"):
                state = state.reading(self.redirect(child, state, state.stdin))
        if name is None:
            return state
        slots = [self.arguments(name, state)]
        slots += [self.arguments(a, state) for a in node.children_by_field_name("argument")]
        outcomes = [self.argv(argv, state) for argv in _variants(slots)]
        return _merge(outcomes, self.home) if outcomes else state

    def argv(self, argv: list[Value], state: _State) -> _State:
        if not argv:
            return state
        name, args = argv[0], argv[1:]
        if name is None or name == STREAM:
            self.opaque.append("it runs a command whose name is known only at run time")
            return state
        if _GLOB.search(name):
            self.opaque.append(f"it runs a command named by a pattern ({name})")
            return state
        program = posixpath.basename(name)
        body = state.function(name)
        if body is not None and name not in self.calling:
            self.calling.add(name)
            try:
                return self.run(body, state)
            finally:
                self.calling.discard(name)
        if program in ("cd", "pushd"):
            return self.cd(args, state)
        if program == "popd":
            return state.at({None})
        if program == "env":
            return self.env(args, state)
        if program in ("sudo", "doas") and self._opens_shell(args):
            return self.login_shell(program, args, state)
        if program in _WRAPPERS:
            if program == "command" and any(a in ("-v", "-V") for a in args):
                return state
            return self.argv(_unwrap(program, args), state)
        if program == "xargs":
            return self.argv([*_xargs_command(args), None], state)
        if program in _SHELLS:
            self.shell(program, args, state)
        elif program == "eval":
            self.eval("eval", args, state)
        elif program in ("source", "."):
            self.source(program, args, state)
        elif program in ("su", "runuser"):
            self.su(program, args, state)
        elif program == "watch":
            self.watch(args, state)
        elif program in ("alias", "trap"):
            self.code_arguments(program, args, state)
        elif _interpreter(program) is not None:
            self.interpreter(program, args, state)
        else:
            self.check(program, args, state)
        return state

    def cd(self, args: list[Value], state: _State) -> _State:
        operands = [a for a in args if a is None or not a.startswith("-") or a == "-"]
        if not operands:
            return state.at({self.home})
        target = operands[0]
        if target is None or target == "-" or target == STREAM:
            return state.at({None})
        return state.at(p for cwd in state.cwds for p in self.resolve(target, cwd))

    def env(self, args: list[Value], state: _State) -> _State:
        i = 0
        while i < len(args):
            arg = args[i]
            if arg is None:
                break
            if arg in ("-S", "--split-string") and i + 1 < len(args):
                rest = args[i + 1]
                if rest is None:
                    self.opaque.append("env -S runs text known only at run time")
                    return state
                return self.argv([*rest.split(), *args[i + 2 :]], state)
            if arg.startswith("--split-string="):
                return self.argv([*arg.partition("=")[2].split(), *args[i + 1 :]], state)
            if arg in ("-u", "--unset", "-C", "--chdir"):
                i += 2
            elif arg == "--":
                i += 1
                break
            elif arg.startswith("-") or re.fullmatch(r"[A-Za-z_]\w*=.*", arg, re.DOTALL):
                i += 1
            else:
                break
        return self.argv(args[i:], state)

    def _opens_shell(self, args: list[Value]) -> bool:
        for arg in args:
            if arg is None or not arg.startswith("-") or arg == "--":
                return False
            if arg in ("-s", "-i", "--shell", "--login") or (not arg.startswith("--") and set("si") & set(arg[1:])):
                return True
        return False

    def login_shell(self, program: str, args: list[Value], state: _State) -> _State:
        """`sudo -s [CMD]`/`sudo -i`: CMD runs through a shell; without one, the shell reads stdin."""
        command = _unwrap(program, args)
        if command:
            self.eval(f"{program} -s", command, state)
        else:
            self.stdin_script(program, state)
        return state

    def shell(self, program: str, args: list[Value], state: _State) -> None:
        command_mode = reads_stdin = False
        i = 0
        while i < len(args):
            arg = args[i]
            if arg is None:
                self.opaque.append(f"{program} is given options known only at run time")
                return
            if arg in ("--", "-"):
                i += 1 if arg == "--" else 0
                break
            if arg.startswith("--"):
                i += 2 if arg in ("--rcfile", "--init-file") else 1
                continue
            if arg[0] in "-+" and len(arg) > 1:
                letters = arg[1:]
                command_mode |= arg[0] == "-" and "c" in letters
                reads_stdin |= "s" in letters
                i += 1 + sum(letters.count(c) for c in "oO")  # -o OPTION, -O SHOPT
                continue
            break
        operands = args[i:]
        if command_mode:
            if not operands:
                return
            text = operands[0]
            if text is None or text == STREAM:
                self.opaque.append(f"{program} -c runs text known only at run time")
            else:
                self.script(text, state)
            return
        if operands and not reads_stdin and operands[0] not in _STDIN_PATHS:
            if operands[0] == STREAM:
                self.reasons.append(f"runs a script that {program} reads from another process (<(...))")
            elif operands[0] is None:
                self.opaque.append(f"{program} runs a script whose path is known only at run time")
            return  # a script file
        self.stdin_script(program, state)

    def stdin_script(self, program: str, state: _State) -> None:
        if state.stdin == "pipe":
            self.reasons.append(f"pipes text into a shell ({program}): whatever feeds it runs unseen")
        elif state.stdin == STREAM:
            self.reasons.append(f"runs a script that {program} reads from another process (<(...))")
        elif state.stdin:
            self.script(state.stdin, state.reading(""))

    def eval(self, what: str, args: Sequence[Value], state: _State) -> None:
        if any(a is None or a == STREAM for a in args):
            self.opaque.append(f"{what} runs text known only at run time")
        else:
            self.script(" ".join(a for a in args if a is not None), state)

    def source(self, program: str, args: list[Value], state: _State) -> None:
        target = args[0] if args else None
        if target == STREAM:
            self.reasons.append(f"runs a script that {program} reads from another process (<(...))")
        elif target in _STDIN_PATHS:
            self.stdin_script(program, state)
        elif target is None:
            self.opaque.append(f"{program} runs a file whose path is known only at run time")

    def su(self, program: str, args: list[Value], state: _State) -> None:
        for i, arg in enumerate(args):
            if arg in ("-c", "--command") and i + 1 < len(args):
                self.eval(f"{program} -c", args[i + 1 : i + 2], state)
                return
            if arg is not None and arg.startswith("--command="):
                self.eval(f"{program} -c", [arg.partition("=")[2]], state)
                return
        if program == "runuser" and "--" in args:
            self.argv(args[args.index("--") + 1 :], state)
        else:
            self.stdin_script(program, state)

    def watch(self, args: list[Value], state: _State) -> None:
        i = 0
        while i < len(args) and args[i] is not None and str(args[i]).startswith("-"):
            i += 2 if args[i] in ("-n", "--interval", "-d", "-q") else 1
        self.eval("watch", args[i:], state)

    def code_arguments(self, program: str, args: list[Value], state: _State) -> None:
        """`alias x='...'` and `trap '...' SIG`: shell text run later."""
        if program == "trap":
            texts = args[:1] if args and args[0] not in ("-p", "-l") else []
        else:
            texts = [a.partition("=")[2] if a is not None else None for a in args if a is None or "=" in a]
        for text in texts:
            if text and text != "-":
                self.eval(program, [text], state)

    def interpreter(self, program: str, args: list[Value], state: _State) -> None:
        letters, valued = _interpreter(program) or ("", frozenset())
        i = 0
        while i < len(args):
            arg = args[i]
            if arg is None or arg == "-" or not arg.startswith("-"):
                break
            if arg in _INLINE_LONG or (letters and not arg.startswith("--") and set(letters) & set(arg[1:])):
                return  # the program is inline
            i += 2 if arg in valued else 1
        if i < len(args) and args[i] not in _STDIN_PATHS:
            if args[i] == STREAM:
                self.reasons.append(f"runs a program that {program} reads from another process (<(...))")
            return  # a program file
        if state.stdin in ("pipe", STREAM):
            self.reasons.append(f"pipes text into an interpreter ({program}): whatever feeds it runs unseen")

    # --- what a single program does -----------------------------------------------------------------

    def check(self, program: str, args: list[Value], state: _State) -> None:
        if program == "rm":
            if "--no-preserve-root" in args:
                self.reasons.append("rm --no-preserve-root")
            options, targets = _split_options(args)
            if _has_flag(options, "rR", "--recursive"):
                for target in targets:
                    self.removal("recursive rm of {}", target, state)
        elif program in ("chmod", "chown", "chgrp"):
            options, operands = _split_options(args)
            if _has_flag(options, "R", "--recursive"):
                referenced = any(o is not None and o.startswith("--reference") for o in options)
                for target in operands[0 if referenced else 1 :]:
                    self.removal(f"recursive {program} of {{}}", target, state)
        elif program == "find":
            self.find(args, state)
        elif program == "rsync" and any(a is not None and a.startswith("--delete") for a in args):
            _, operands = _split_options(args)
            if operands and (operands[-1] is None or ":" not in operands[-1]):  # host:path is another machine
                self.removal("rsync --delete into {}", operands[-1], state)
        elif program.startswith("mkfs") or program in ("mke2fs", "mkswap"):
            self.reasons.append("creates a filesystem (erases a disk)")
        elif program == "wipefs":
            self.reasons.append("erases filesystem signatures (wipefs)")
        elif program == "dd":
            for arg in args:
                if arg is not None and arg.startswith("of="):
                    self.device("dd writes to {}", arg[3:], state)
        elif program in ("tee", "shred", "cp", "mv", "install", "truncate"):
            _, operands = _split_options(args)
            for target in operands if program in ("tee", "shred", "truncate") else operands[-1:]:
                if target is not None:
                    self.device(f"{program} writes to {{}}", target, state)
        elif (
            program in _POWER
            or (program == "systemctl" and _POWER.intersection(a for a in args if a))
            or (program in ("init", "telinit") and args[:1] in (["0"], ["6"]))
        ):
            self.reasons.append("shuts down or reboots the machine")

    def find(self, args: list[Value], state: _State) -> None:
        i = 0
        while i < len(args) and (args[i] in ("-H", "-L", "-P", "-D") or str(args[i]).startswith("-O")):
            i += 2 if args[i] == "-D" else 1
        starts: list[Value] = []
        while i < len(args) and (args[i] is None or not str(args[i]).startswith(("-", "(", "!", ","))):
            starts.append(args[i])
            i += 1
        starts = starts or ["."]
        expression = args[i:]
        if "-delete" in expression:
            for start in starts:
                self.removal("find -delete in {}", start, state)
        for j, word in enumerate(expression):
            if word in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next((k for k in range(j + 1, len(expression)) if expression[k] in (";", "+")), len(expression))
                command = expression[j + 1 : end]
                program = _program(command)
                removes = program in ("rm", "unlink", "shred")
                for start in starts:  # the first path it hands over is the start itself
                    if removes:  # even without -r: every file below the start goes
                        self.removal(f"find -exec {program} in {{}}", start, state)
                    self.argv([start if w == "{}" else w for w in command], state)

    def removal(self, what: str, target: Value, state: _State) -> None:
        if target is None or target == STREAM:
            self.reasons.append(what.format("a path known only at run time"))
            return
        for cwd in state.cwds:
            for path in self.resolve(target, cwd):
                hit = self.critical(path)
                if hit is None:
                    continue
                if not target.startswith(("/", "~")):
                    shown = f"{target} in {cwd or 'a directory known only at run time'}"
                else:
                    shown = target if _normal(target) == hit else f"{target} (matches {hit})"
                self.reasons.append(what.format(shown))
                return

    def device(self, what: str, target: str, state: _State) -> None:
        for cwd in state.cwds:
            for path in self.resolve(target, cwd):
                if path.startswith("/dev/") and not any(fnmatchcase(path, d) for d in _HARMLESS_DEVICES):
                    self.reasons.append(what.format(f"a device ({path})"))
                    return

    def resolve(self, target: str, cwd: Value) -> list[str]:
        """The absolute paths `target` may name, from `cwd` (None: unknown, so / and ~ are both
        possible). Another user's home stays `~user`."""
        if target.startswith("~") and not target.startswith("~/") and target != "~":
            return [_normal(target)]
        if target.startswith("~"):
            target = self.home + target[1:]
        if target.startswith(("/", "~")):
            return [_normal(target)]
        bases = [cwd] if cwd is not None else ["/", self.home]
        return [_normal(f"{base}/{target}") for base in bases]

    def critical(self, path: str) -> str | None:
        """The system directory (or home) that removing `path` would wreck, or None."""
        parts = [p for p in path.split("/") if p]
        if path.startswith("~") and path != self.home and not path.startswith(self.home + "/"):
            return parts[0] if all(_broad(p) for p in parts[1:]) else None  # another user's home
        if path.startswith("~"):
            parts = ["~", *parts[1:]] if self.home == "~" else parts
        for directory in self._critical:
            n = len(directory)
            if (
                len(parts) >= n
                and all(fnmatchcase(d, p) for d, p in zip(directory, parts, strict=False))
                and all(_broad(p) for p in parts[n:])
            ):
                return "~" if directory in (["~"], self._home_parts) else "/" + "/".join(directory)
        return None


_WORDS = frozenset(
    {
        "word",
        "string",
        "raw_string",
        "ansi_c_string",
        "concatenation",
        "simple_expansion",
        "expansion",
        "number",
        "translated_string",
        "arithmetic_expansion",
    }
)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")


def _join(parts: list[list[Value]]) -> list[Value]:
    """Every concatenation of one value from each part; unknown when any part is."""
    joined: list[Value] = [""]
    for values in parts:
        joined = [None if a is None or b is None or b == STREAM else a + b for a in joined for b in values]
        if len(set(joined)) > MAX_VALUES:
            return [None]
    return list(dict.fromkeys(joined))


def _expand_braces(values: list[Value]) -> list[Value]:
    """`/{etc,usr}` -> /etc, /usr (comma lists; ranges are left as they are)."""
    out: list[Value] = []
    for value in values:
        if value is None:
            out.append(None)
            continue
        match = re.search(r"\{([^{}]*,[^{}]*)\}", value)
        if match is None:
            out.append(value)
            continue
        out += _expand_braces(
            [value[: match.start()] + alt + value[match.end() :] for alt in match.group(1).split(",")]
        )
    return out if len(out) <= MAX_VALUES else [None]


def _variants(slots: list[list[tuple[Value, ...]]]) -> Iterator[list[Value]]:
    """Every argv the words may make; past MAX_VALUES, each word with several values is unknown."""
    count = 1
    for values in slots:
        count *= max(len(values), 1)
    if count > MAX_VALUES:
        slots = [values if len(values) == 1 else [(None,)] for values in slots]
    for choice in itertools.product(*slots):
        yield [word for words in choice for word in words]


def _normal(path: str) -> str:
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("/") else normal


def _ancestors(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts))]


def _broad(component: str) -> bool:
    """A glob that matches nearly any name: `*`, `.*`, `?*`, `[!.]*`."""
    return bool(_GLOB.search(component)) and fnmatchcase("anything", component.lstrip("."))


def _split_options(args: list[Value]) -> tuple[list[Value], list[Value]]:
    """Options and operands (an unknown word counts as an operand; `--` ends options)."""
    options: list[Value] = []
    operands: list[Value] = []
    ended = False
    for arg in args:
        if not ended and arg == "--":
            ended = True
        elif not ended and arg is not None and arg.startswith("-") and arg != "-":
            options.append(arg)
        else:
            operands.append(arg)
    return options, operands


def _has_flag(options: list[Value], letters: str, long: str) -> bool:
    return any(o == long or (o and not o.startswith("--") and set(letters) & set(o[1:])) for o in options)


def _unwrap(program: str, args: Sequence[Value]) -> list[Value]:
    """The command a wrapper runs: `sudo -u root rm -rf /` -> `rm -rf /`."""
    valued, operands = _WRAPPERS.get(program, (frozenset(), 0))
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg is None or not arg.startswith("-") or arg == "-":
            break
        i += 2 if arg in valued else 1
    return list(args[i + operands :])


def _program(argv: Sequence[Value]) -> str:
    """The program a command line runs, through wrappers: `sudo nice rm` -> rm ("" when unknown)."""
    while argv and argv[0] is not None and posixpath.basename(argv[0]) in _WRAPPERS:
        argv = _unwrap(posixpath.basename(argv[0]), argv[1:])
    return posixpath.basename(argv[0]) if argv and argv[0] is not None else ""


def _xargs_command(args: list[Value]) -> list[Value]:
    valued = {
        "-a",
        "-d",
        "-E",
        "-e",
        "-I",
        "-i",
        "-L",
        "-l",
        "-n",
        "-P",
        "-s",
        "--arg-file",
        "--delimiter",
        "--max-args",
        "--max-procs",
        "--max-chars",
        "--replace",
        "--max-lines",
    }
    i = 0
    while i < len(args) and args[i] is not None and str(args[i]).startswith("-"):
        i += 2 if args[i] in valued else 1
    return list(args[i:]) or ["echo"]


def _interpreter(program: str) -> tuple[str, frozenset[str]] | None:
    base = re.sub(r"[\d.]+$", "", program)  # python3.12 -> python
    return _INTERPRETERS.get(base)


def _calls_itself_in_parallel(name: str, body: Node) -> bool:
    """The body runs the function again in a pipeline or in the background: a fork bomb."""
    stack = [body]
    while stack:
        node = stack.pop()
        if node.type == "command":
            called = node.child_by_field_name("name")
            if called is not None and _text(called) == name and _in_parallel(node, body):
                return True
        stack.extend(node.named_children)
    return False


def _in_parallel(node: Node, top: Node) -> bool:
    current: Node | None = node
    while current is not None and current != top:
        if current.type == "pipeline":
            return True
        sibling = current.next_sibling
        if sibling is not None and sibling.type == "&":
            return True
        current = current.parent
    return False
