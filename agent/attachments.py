"""Attachments: files and images a user adds to a message (`-a FILE`, `@path`).

A text file goes to the model as a fenced block under its name; an image (png, jpeg, gif, webp) as
an `image_url` part holding a data URL, for models that take images. Anything else is refused, as
is a file over the size cap. What a file is comes from its bytes, not its name.

    AttachmentError (a UsageError, exit 2) -- a file that cannot be attached, and why.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from providers.errors import UsageError

_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_AT_PATH = re.compile(r"(?:(?<=\s)|^)@(\S+)")


class AttachmentError(UsageError):
    pass


@dataclass(frozen=True)
class Attachment:
    name: str  # as the user gave it: a path, or "stdin"
    mime: str
    data: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def fenced(self) -> str:
        text = self.data.decode("utf-8", "replace")
        fence = "```"
        while fence in text:
            fence += "`"
        return f"{self.name}:\n{fence}\n{text.rstrip(chr(10))}\n{fence}"


def sniff(data: bytes) -> str | None:
    """The attachment's type from its bytes: an image type, text/plain, or None for other binaries."""
    for magic, mime in _IMAGES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"\0" in data[:8192]:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


def from_bytes(name: str, data: bytes, *, max_bytes: int) -> Attachment:
    if len(data) > max_bytes:
        raise AttachmentError(
            f"{name} is {len(data):,} bytes, over the {max_bytes:,}-byte limit for attachments.",
            hint="Attach a smaller file, or raise [agent] max_attachment_bytes.",
        )
    mime = sniff(data)
    if mime is None:
        raise AttachmentError(
            f"{name} is neither text nor an image (png, jpeg, gif, webp), so it cannot be attached.",
            hint="Convert it to text first (e.g. pdftotext), or attach an image.",
        )
    return Attachment(name, mime, data)


def read_attachment(path: str, *, cwd: Path, max_bytes: int) -> Attachment:
    """The file at `path` (relative to `cwd`). Raises AttachmentError."""
    target = resolve(path, cwd)
    try:
        size = target.stat().st_size
        if not target.is_file():
            raise AttachmentError(f"{path} is not a file.")
        if size > max_bytes:  # refused before reading a huge file into memory
            raise AttachmentError(
                f"{path} is {size:,} bytes, over the {max_bytes:,}-byte limit for attachments.",
                hint="Attach a smaller file, or raise [agent] max_attachment_bytes.",
            )
        data = target.read_bytes()
    except FileNotFoundError:
        raise AttachmentError(f"{path}: no such file to attach.") from None
    except OSError as e:
        raise AttachmentError(f"Cannot read {path}: {e.strerror or e}.") from None
    return from_bytes(path, data, max_bytes=max_bytes)


def resolve(path: str, cwd: Path) -> Path:
    try:
        return (cwd / Path(path).expanduser()).resolve()
    except (OSError, ValueError, RuntimeError):
        raise AttachmentError(f"{path!r} is not a usable path.") from None


def outside(path: str, cwd: Path) -> bool:
    """Whether `path` leads out of the working directory (attaching it asks, as read_file does)."""
    target, root = resolve(path, cwd), cwd.resolve()
    return target != root and root not in target.parents


def mentions(text: str, cwd: Path) -> Iterator[str]:
    """The `@path` words of a message that name existing files (an `@name` that is no file stays text)."""
    for match in _AT_PATH.finditer(text):
        word = match.group(1).rstrip(".,;:!?)")
        try:
            if word and resolve(word, cwd).is_file():
                yield word
        except AttachmentError:
            continue
