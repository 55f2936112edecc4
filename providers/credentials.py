"""Credentials: where keys come from, their stable ids, and how they are shown (masked, always).

A credential carries a pinned endpoint only when the user gave one (`hermes auth add --base-url` or
`--region`). Registry defaults are never copied onto a credential: the session's endpoint is the
session's, and recovery cannot move it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple, overload

from providers.atomic import locked, write_atomic
from providers.errors import StorageError, UsageError
from providers.provider_config import ProviderConfig
from providers.registry import ProviderSpec
from providers.secrets import mask_key

ANONYMOUS = "anonymous"


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


class Credential(NamedTuple):
    """Immutable, like a frozen dataclass, but built three times faster (listings make one for each of
    thousands of keys)."""

    id: str
    provider: str
    source: str
    label: str
    secret: str | None
    pinned_base_url: str | None = None
    command: str | tuple[str, ...] | None = None

    def __repr__(self) -> str:  # never the secret, nor the command that prints it
        return f"Credential(id={self.id!r}, provider={self.provider!r}, source={self.source!r}, label={self.label!r})"

    @property
    def masked(self) -> str:
        return mask_key(self.secret)

    @property
    def refreshable(self) -> bool:
        return self.command is not None


_PRINTABLE_WORD = re.compile(r"[!-~]*")  # printable ASCII but space: what every key is, checked in C


def key_problem(secret: str) -> str | None:
    """Why `secret` cannot be an API key, or None. Such a key would break the Authorization header or
    smuggle another header into it (`sk-…\nX-Injected: 1`), so it is refused before any request."""
    if _PRINTABLE_WORD.fullmatch(secret):
        return None
    if "\n" in secret or "\r" in secret:
        return "a line break"
    if any(ch.isspace() for ch in secret):
        return "white space"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in secret):
        return "a control character"
    if not secret.isascii():
        return "non-ASCII characters"
    return None


def check_key(secret: str, provider: str, where: str) -> None:
    problem = key_problem(secret)
    if problem:
        raise UsageError(
            f"The {provider} key from {where} contains {problem}, so it was not used (it is not shown here).",
            hint="An API key is one word of printable ASCII; fix it where it comes from.",
        )


def run_key_command(command: str | Sequence[str], provider: str) -> str:
    args = shlex.split(command) if isinstance(command, str) else list(command)
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(f"api_key_command of provider {provider!r} could not run: {e}.") from None
    key = done.stdout.strip().splitlines()[0].strip() if done.stdout.strip() else ""
    if done.returncode != 0 or not key:
        raise UsageError(
            f"api_key_command of provider {provider!r} exited {done.returncode} without printing a key.",
            hint="Run the command by hand to see why.",
        )
    return key


class AddedKeys(NamedTuple):
    """One provider's keys from `hermes auth add`, in the order added, as columns: thousands of keys are
    read as five lists several times faster than as that many objects."""

    ids: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    labels: tuple[str | None, ...] = ()
    base_urls: tuple[str | None, ...] = ()
    added: tuple[float | None, ...] = ()  # when, in Unix seconds: whole ones parse five times faster


_NO_KEYS = AddedKeys()
_Row = tuple[str, str, str | None, str | None, float | None]  # one key of AddedKeys
_COLUMNS = AddedKeys._fields
_NONE = type(None)
_COLUMN_TYPES: dict[str, frozenset[type]] = {
    "ids": frozenset({str}),
    "keys": frozenset({str}),
    "labels": frozenset({str, _NONE}),
    "base_urls": frozenset({str, _NONE}),
    "added": frozenset({int, float, _NONE}),
}


class AuthStore:
    """Keys added with `hermes auth add`, in one 0600 JSON file in the state dir.

    The file is `{"version": 2, "providers": {"<id>": {"ids": [...], "keys": [...], "labels": [...],
    "base_urls": [...], "added": [...]}}}`: per provider, one list per field, the nth entries making
    the nth key. The id of each key (see `fingerprint`) is stored with it, so that reading thousands of
    keys hashes none. A file of the first format (`{"credentials": [{"provider", "key", "label",
    "base_url", "added"}, ...]}`) is read as it is and written in the second at the next change.

    The file holds keys the user cannot get back from anywhere else, so it is never rewritten unless it
    was read whole: a file that is unreadable or of the wrong shape is reported (a warning where it is only
    read, an error for `add` and `remove`) and left exactly as it is.
    """

    def __init__(self, path: Path, *, warn: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._warn = warn
        self.problem: str | None = None  # why the file cannot be used, once a read found out
        # The last file read and its keys: the pool and the secret registry both read it, and with
        # thousands of keys parsing it again would cost what reading it cannot.
        self._parsed: tuple[bytes, dict[str, AddedKeys]] | None = None

    def _parse(self) -> dict[str, AddedKeys]:
        """Every provider's keys; ValueError saying what is wrong with the file."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except IsADirectoryError:
            raise ValueError("it is a directory") from None
        except OSError as e:
            raise ValueError(e.strerror or str(e)) from None
        if self._parsed is not None and self._parsed[0] == raw:
            return self._parsed[1]
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json can follow
            raise ValueError("it is not JSON") from None
        if isinstance(data, dict) and data.get("version") == 2:
            tables = data.get("providers")
            if not isinstance(tables, dict):
                raise ValueError('it has no "providers" table')
            parsed = {name: _columns(name, table) for name, table in tables.items()}
        elif isinstance(data, dict) and "version" not in data:
            parsed = _first_format(data.get("credentials"))
        else:
            raise ValueError("it is not of a version this hermes knows")
        self._parsed = (raw, parsed)
        return parsed

    def _read(self, *, strict: bool) -> dict[str, AddedKeys]:
        try:
            return self._parse()
        except ValueError as e:
            message = (
                f"{self.path} is unusable ({e}); the keys added with `hermes auth add` are in it and are "
                "ignored until it is fixed."
            )
            if strict:
                raise StorageError(
                    message, hint="It was not changed: fix it, or move it aside to start afresh."
                ) from None
            if self.problem is None and self._warn is not None:
                self._warn(message + " Fix it, or move it aside to start afresh.")
            self.problem = message
            return {}

    def keys(self, provider: str) -> AddedKeys:
        return self._read(strict=False).get(provider, _NO_KEYS)

    def providers(self) -> set[str]:
        """The providers that have keys here."""
        return {name for name, added in self._read(strict=False).items() if added.ids}

    def secrets(self) -> list[str]:
        """Every key of every provider."""
        return list(chain.from_iterable(added.keys for added in self._read(strict=False).values()))

    def add(self, provider: str, key: str, *, label: str, base_url: str | None) -> str:
        check_key(key, provider, "the key given")
        cred_id = fingerprint(key)
        with locked(self.path):  # another `hermes auth add` at the same time keeps its key too
            tables = self._read(strict=True)
            old = tables.get(provider, _NO_KEYS)
            if cred_id in old.ids:
                raise UsageError(f"That key is already in the pool of {provider!r} (id {cred_id}).")
            row = (cred_id, key, label, base_url, int(time.time()))
            self._write({**tables, provider: _transposed([*_rows(old), row])})
        return cred_id

    def remove(self, provider: str, cred_id: str) -> bool:
        with locked(self.path):
            tables = self._read(strict=True)
            old = tables.get(provider, _NO_KEYS)
            kept = [row for row in _rows(old) if row[0] != cred_id]
            if len(kept) == len(old.ids):
                return False
            rest = {name: added for name, added in tables.items() if name != provider}
            self._write(rest | ({provider: _transposed(kept)} if kept else {}))
        return True

    def _write(self, tables: dict[str, AddedKeys]) -> None:
        document = {"version": 2, "providers": {name: added._asdict() for name, added in tables.items()}}
        # Without indentation, which would put each of thousands of keys on a line: a third of the bytes to read.
        write_atomic(self.path, json.dumps(document).encode("utf-8"))


def _columns(provider: Any, table: Any) -> AddedKeys:
    """A provider's table of the second format, checked by its columns' types at C speed."""
    if not isinstance(table, dict) or not isinstance(provider, str) or not provider:
        raise ValueError(f"the keys of provider {provider!r} are not a table")
    columns: list[tuple[Any, ...]] = []
    for name in _COLUMNS:
        column = table.get(name)
        if not isinstance(column, list) or (columns and len(column) != len(columns[0])):
            raise ValueError(f"the keys of provider {provider!r} are not {', '.join(_COLUMNS)} lists of one length")
        if not _of_types(column, _COLUMN_TYPES[name]) or (name in ("ids", "keys") and "" in column):
            raise ValueError(f"the {name} of provider {provider!r} are not all of the right type")
        columns.append(tuple(column))
    return AddedKeys(*columns)


def _of_types(column: list[Any], types: frozenset[type]) -> bool:
    if types == {str}:  # joined in C, which refuses anything else: ids and keys, thousands of them
        try:
            "".join(column)
        except TypeError:
            return False
        return True
    return set(map(type, column)) <= types


def _first_format(entries: Any) -> dict[str, AddedKeys]:
    """The keys of a file written before 2026-12-02, a list of entries, each hashed for its id."""
    if not isinstance(entries, list):
        raise ValueError('it has no "credentials" list')
    rows: dict[str, list[_Row]] = {}
    for n, entry in enumerate(entries, 1):
        if not _valid_entry(entry):
            raise ValueError(f"entry {n} is not a provider, key, label and base_url")
        added = entry.get("added")
        when = added if isinstance(added, int | float) and not isinstance(added, bool) else None
        row = (fingerprint(entry["key"].strip()), entry["key"], entry.get("label"), entry.get("base_url"), when)
        rows.setdefault(entry["provider"], []).append(row)
    return {provider: _transposed(table) for provider, table in rows.items()}


def _rows(added: AddedKeys) -> list[_Row]:
    return list(zip(*added, strict=True))


def _transposed(rows: list[_Row]) -> AddedKeys:
    return AddedKeys(*(tuple(column) for column in zip(*rows, strict=True)))


def _valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    provider, key, label, base_url = entry.get("provider"), entry.get("key"), entry.get("label"), entry.get("base_url")
    return (
        isinstance(provider, str)
        and provider != ""
        and isinstance(key, str)
        and key != ""
        and (label is None or isinstance(label, str))
        and (base_url is None or isinstance(base_url, str))
    )


def _auth_entry_name(cred_id: str, path: Path, _key: str) -> str:
    return f"`hermes auth add` entry {cred_id} in {path}"


def _item_name(where: str, item: int, _key: str) -> str:
    return f"{where} (item {item})"


class Credentials(Sequence[Credential]):
    """One provider's credentials in pool order. The keys of `hermes auth add` (thousands, maybe) stay the
    store's columns, and a Credential of one is made when it is asked for: a request needs one key, and
    `ids` and `secrets` (what selection and the secret registry need of them all) are made in C."""

    def __init__(
        self,
        head: Sequence[Credential] = (),
        stored: AddedKeys = _NO_KEYS,
        tail: Sequence[Credential] = (),
        *,
        provider: str = "",
    ) -> None:
        self._head, self._stored, self._tail, self._provider = tuple(head), stored, tuple(tail), provider
        self.ids: tuple[str, ...] = tuple(map(_ID, self._head)) + stored.ids + tuple(map(_ID, self._tail))
        self.secrets: tuple[str | None, ...] = (
            tuple(map(_SECRET, self._head)) + stored.keys + tuple(map(_SECRET, self._tail))
        )

    def __len__(self) -> int:
        return len(self.ids)

    def providers(self) -> set[str]:
        """The providers these belong to (one, in a well-made pool)."""
        return {
            *map(_PROVIDER, self._head),
            *map(_PROVIDER, self._tail),
            *([self._provider] if self._stored.ids else []),
        }

    @overload
    def __getitem__(self, index: int) -> Credential: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Credential, ...]: ...

    def __getitem__(self, index: int | slice) -> Credential | tuple[Credential, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        i = index + len(self) if index < 0 else index
        if not 0 <= i < len(self):
            raise IndexError("credential index out of range")
        if i < len(self._head):
            return self._head[i]
        i -= len(self._head)
        stored = self._stored
        if i < len(stored.ids):
            label, pin = stored.labels[i] or "added", stored.base_urls[i] or None
            return Credential(stored.ids[i], self._provider, "auth", label, stored.keys[i], pin)
        return self._tail[i - len(stored.ids)]

    def replaced(self, new: Credential) -> Credentials:
        """These, with `new` in place of the credential of its id (a refresh: one with a command)."""

        def swap(creds: tuple[Credential, ...]) -> tuple[Credential, ...]:
            return tuple(new if c.id == new.id else c for c in creds)

        return Credentials(swap(self._head), self._stored, swap(self._tail), provider=self._provider)


_ID = attrgetter("id")
_SECRET = attrgetter("secret")
_PROVIDER = attrgetter("provider")


def load_credentials(
    spec: ProviderSpec,
    *,
    env: Mapping[str, str],
    config: ProviderConfig,
    auth_store: AuthStore,
    run_command: bool = True,
) -> Credentials:
    """Every key of one provider, in pool order: env, config, `hermes auth add`, api_key_command.

    The same key from two sources is one credential (the first source wins). `run_command=False`
    leaves out the api_key_command key, for listings that must not run (or prompt from) a command.
    """
    found: list[Credential] = []
    seen: set[str] = set()

    def add(
        secret: str,
        source: str,
        label: str,
        pinned: str | None = None,
        where: Callable[[str], str] | None = None,
        cred_id: str | None = None,
    ) -> None:
        """`where(secret)` names the key's place, made only for a bad one; `cred_id` is the id stored with it."""
        secret = secret.strip()
        if not secret:
            return
        if key_problem(secret):
            check_key(secret, spec.id, where(secret) if where else source)
        cred_id = cred_id or fingerprint(secret)
        if cred_id in seen:
            return
        seen.add(cred_id)
        found.append(Credential(cred_id, spec.id, source, label, secret, pinned))

    key_envs = [spec.key_env, *spec.key_env_aliases]
    for name in key_envs:
        if env.get(name):
            add(env[name], f"env {name}", name)
    keys_env = spec.keys_env
    if env.get(keys_env):
        for i, key in enumerate(env[keys_env].split(","), 1):
            add(key, f"env {keys_env}", f"{keys_env}#{i}", where=partial(_item_name, f"env {keys_env}", i))
    for i, key in enumerate(config.api_keys, 1):
        add(key, "config", f"api_keys#{i}", where=partial(_item_name, f"[providers.{spec.id}] api_keys", i))
    stored = auth_store.keys(spec.id)
    if not (
        seen.isdisjoint(stored.ids)
        and len(set(stored.ids)) == len(stored.ids)
        and _PRINTABLE_WORD.fullmatch("".join(stored.keys))
    ):  # edited by hand: one by one, to strip, name a bad key and drop a key given twice
        for cred_id, key, label, pin in zip(stored.ids, stored.keys, stored.labels, stored.base_urls, strict=True):
            named = partial(_auth_entry_name, cred_id, auth_store.path)
            add(key, "auth", label or "added", pin or None, where=named, cred_id=cred_id)
        stored = _NO_KEYS
    # Else as `hermes auth add` keeps them (each key checked, one word, its id beside it): kept as they are.
    seen.update(stored.ids)
    tail: list[Credential] = []
    command = config.api_key_command
    if command and run_command:
        secret = run_key_command(command, spec.id)
        check_key(secret, spec.id, "the output of api_key_command")
        cred_id = "cmd-" + fingerprint(command if isinstance(command, str) else "\0".join(command))
        if fingerprint(secret) not in seen:
            tail.append(Credential(cred_id, spec.id, "api_key_command", "api_key_command", secret, None, command))
    if not found and not stored.ids and not command and not spec.needs_key:
        found.append(Credential(ANONYMOUS, spec.id, "none needed", "no key", None))
    return Credentials(found, stored, tail, provider=spec.id)


def refreshed(cred: Credential, warn: Callable[[str], None]) -> Credential | None:
    """Run the credential's command again; a new key means a refresh worth retrying. A command that
    fails is told (`warn`) and means no refresh."""
    if cred.command is None:
        return None
    try:
        secret = run_key_command(cred.command, cred.provider)
    except UsageError as e:
        warn(str(e))
        return None
    if secret == cred.secret or key_problem(secret):
        return None
    return Credential(cred.id, cred.provider, cred.source, cred.label, secret, cred.pinned_base_url, cred.command)
