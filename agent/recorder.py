"""The session store as the agent's ConversationLog, one writer per session."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.agent import Agent
    from agent.conversation import Message
    from agent.sessions import SessionInfo, SessionStore


@dataclass
class Recorder:
    """Every change to the conversation is recorded as it happens (each message as it completes, undo
    and retry as superseded records, the system prompt, the title), so `-c`/`-r` restore exactly what
    was on screen. The session row is created on the first message. One writer per session: the
    recorder holds the session's lock (an flock, released by the kernel when the process ends, however
    it ends), and a session another process holds is forked rather than written by two. `scrub` takes
    every known secret out of what is stored."""

    store: SessionStore | None
    lock_dir: Path | None = None
    scrub: Callable[[str], str] = lambda text: text
    agent: Agent | None = None
    session: SessionInfo | None = None
    _lock: int | None = None  # the descriptor holding the session's lock

    @property
    def session_id(self) -> str | None:
        return self.session.id if self.session else None

    def append(self, message: Message) -> None:
        if self.store is None or self.agent is None:
            return
        route = self.agent.route
        if self.session is None:
            self.session = self.store.create(
                provider=route.provider.id, model=route.model, base_url=route.endpoint.url, system=self.agent.system
            )
            self._take(self.session.id)
        elif (self.session.provider, self.session.model) != (route.provider.id, route.model):
            self.store.set_route(
                self.session.id, provider=route.provider.id, model=route.model, base_url=route.endpoint.url
            )
            self.session = replace(self.session, provider=route.provider.id, model=route.model)
        stored = scrubbed(message, self.scrub)
        costed = message.role == "assistant" and message.usage is not None
        cost = self.agent.message_cost(message) if costed else None
        self.store.append(self.session.id, stored, cost=cost, costed=costed)
        if not self.session.title and message.role == "user":
            from agent.sessions import title_from

            self.session = replace(self.session, title=title_from(stored.content))

    def truncate(self, keep: int, reason: str) -> None:
        if self.store is not None and self.session is not None:
            self.store.truncate(self.session.id, keep, reason)

    def set_system(self, text: str | None) -> None:
        if self.store is not None and self.session is not None:
            self.store.set_system(self.session.id, text)

    def set_title(self, title: str) -> None:
        if self.store is not None and self.session is not None:
            self.store.set_title(self.session.id, title)
            self.session = replace(self.session, title=title)

    def start_new(self) -> None:
        self._release()
        self.session = None

    def claim(self, session: SessionInfo) -> tuple[SessionInfo, bool]:
        """Become the writer of `session`; when another process already is, continue in a fork of it
        (the same history, a new id) instead. Returns the session written to and whether it forked."""
        self._release()
        if self.store is None:
            self.session = session
            return session, False
        forked = not self._take(session.id)
        if forked:
            session = self.store.fork(session.id)
            self._take(session.id)
        self.session = session
        return session, forked

    def _take(self, session_id: str) -> bool:
        if self.lock_dir is None:
            return True
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_dir / f"{session_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return True  # no lock dir to be had (a read-only state dir): nothing to coordinate with
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._release()
        self._lock = fd
        return True

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None


def scrubbed(message: Message, scrub: Callable[[str], str]) -> Message:
    """The message as it may be stored: no known secret in its text or its tool calls' arguments."""
    calls = tuple(
        {**c, "function": {**c["function"], "arguments": scrub(c["function"]["arguments"])}}
        if isinstance(c.get("function"), dict) and isinstance(c["function"].get("arguments"), str)
        else c
        for c in message.tool_calls
    )
    content = scrub(message.content) if message.content else message.content
    reasoning = scrub(message.reasoning) if message.reasoning else message.reasoning
    if content == message.content and calls == message.tool_calls and reasoning == message.reasoning:
        return message
    return replace(message, content=content, tool_calls=calls, reasoning=reasoning)
