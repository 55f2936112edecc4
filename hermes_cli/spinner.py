"""The spinner shown while the local model server starts: on a terminal a spinner, otherwise one line."""

from __future__ import annotations

import sys
from typing import IO


class StartSpinner:
    """A spinner on a terminal; one line otherwise (logs stay readable)."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    TEXT = "starting the local model server…"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.frame = 0
        if not self.tty:
            print(f"hermes: {self.TEXT}", file=self.stream, flush=True)

    def tick(self) -> None:
        if self.tty:
            self.stream.write(f"\r{self.FRAMES[self.frame % len(self.FRAMES)]} {self.TEXT}")
            self.stream.flush()
            self.frame += 1

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
