"""Error reporting in Click's style.

Click reports problems through an ErrorHandler that prints each message as it
arrives (``FILE:LINE: message``) and counts errors; callers compare counts
before and after a step to learn whether it failed.  We keep that model, since
Click's tests compare stderr byte for byte, and add exceptions for code that
wants to stop at the first problem.
"""

from __future__ import annotations

import sys
from typing import TextIO


class ClickError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(ClickError):
    """A bad configuration argument, handler value or element setting.

    ``str(err)`` is the message without landmark; ``landmark`` is ``FILE:LINE``
    when known.
    """

    def __init__(self, message: str, landmark: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.landmark = landmark


class RouterInitError(ClickError):
    """The router failed to configure or initialize; messages were already reported."""


class ErrorHandler:
    """Collects and (by default) prints messages, counting errors and warnings.

    ``lines`` keeps every printed line so tests and the daemon can read them back.
    """

    def __init__(self, stream: TextIO | None = None, *, echo: bool = True) -> None:
        self.stream = stream
        self.echo = echo
        self.nerrors = 0
        self.nwarnings = 0
        self.lines: list[str] = []

    # -- primitives -----------------------------------------------------------------
    def _emit(self, text: str) -> None:
        for line in text.split("\n"):
            self.lines.append(line)
        if self.echo:
            out = self.stream if self.stream is not None else sys.stderr
            out.write(text if text.endswith("\n") else text + "\n")
            out.flush()

    def decorate(self, message: str, landmark: str | None) -> str:
        if landmark:
            return "\n".join(f"{landmark}: {line}" for line in message.split("\n"))
        return message

    # -- public ---------------------------------------------------------------------
    def error(self, message: str, landmark: str | None = None) -> int:
        self.nerrors += 1
        self._emit(self.decorate(message, landmark))
        return -1

    def warning(self, message: str, landmark: str | None = None) -> int:
        self.nwarnings += 1
        self._emit(self.decorate("warning: " + message, landmark))
        return 0

    def message(self, message: str, landmark: str | None = None) -> int:
        self._emit(self.decorate(message, landmark))
        return 0

    def text(self) -> str:
        return "\n".join(self.lines)


class SilentErrorHandler(ErrorHandler):
    """Counts and records messages but prints nothing."""

    def __init__(self) -> None:
        super().__init__(echo=False)


class ContextErrorHandler(ErrorHandler):
    """Prints a context line (e.g. ``While configuring 'x :: Queue':``) before the
    first message it passes on, then indents the messages under it, as Click does.
    """

    def __init__(self, parent: ErrorHandler, context: str, landmark: str | None = None,
                 indent: str = "  ") -> None:
        super().__init__(echo=False)
        self.parent = parent
        self.context = context
        self.context_landmark = landmark
        self.indent = indent
        self.context_printed = False

    def _forward(self, kind: str, message: str, landmark: str | None) -> int:
        # Indented lines under the context carry no landmark unless given one.
        lm = landmark
        if not self.context_printed:
            self.context_printed = True
            self.parent.message(self.context, self.context_landmark)
        body = "\n".join(self.indent + line for line in message.split("\n"))
        if kind == "error":
            self.nerrors += 1
            return self.parent.error(body, lm)
        if kind == "warning":
            self.nwarnings += 1
            self.parent.nwarnings += 1
            return self.parent.message(
                "\n".join(self.indent + "warning: " + line for line in message.split("\n")), lm)
        return self.parent.message(body, lm)

    def error(self, message: str, landmark: str | None = None) -> int:
        return self._forward("error", message, landmark)

    def warning(self, message: str, landmark: str | None = None) -> int:
        return self._forward("warning", message, landmark)

    def message(self, message: str, landmark: str | None = None) -> int:
        return self._forward("message", message, landmark)
