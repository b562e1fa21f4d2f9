"""HandlerCall: a stored call of a handler, as elements' ``..._CALL`` arguments use.

The text is ``ELEMENT.HANDLER [VALUE]`` (or a global handler name).  The target
is resolved relative to the calling element's compound context at initialize
time, as Click's HandlerCall::initialize_write does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clickos.core.errors import ConfigError, ErrorHandler, SilentErrorHandler

if TYPE_CHECKING:
    from clickos.core.element import Element
    from clickos.core.handlers import Handler


class HandlerCall:
    def __init__(self, text: str) -> None:
        text = text.strip()
        parts = text.split(None, 1)
        self.name = parts[0] if parts else ""
        self.value = parts[1] if len(parts) > 1 else ""
        self.handler: Handler | None = None

    def __bool__(self) -> bool:
        return bool(self.name)

    def initialize(self, context: Element, write: bool, errh: ErrorHandler | None = None) -> None:
        """Resolve the handler; raise ConfigError with Click's message if it is missing."""
        eh = SilentErrorHandler()
        h = context.router.lookup_handler(self.name, eh, context, want="write" if write else "read")
        if h is None:
            raise ConfigError(eh.lines[0] if eh.lines else f"no handler '{self.name}'")
        self.handler = h

    def initialize_write(self, context: Element, errh: ErrorHandler | None = None) -> None:
        self.initialize(context, True, errh)

    def initialize_read(self, context: Element, errh: ErrorHandler | None = None) -> None:
        self.initialize(context, False, errh)

    def call_write(self, errh: ErrorHandler | None = None, value: str | None = None) -> int:
        if self.handler is None:
            return -1
        return self.handler.call_write(self.value if value is None else value, errh or ErrorHandler())

    def call_read(self, errh: ErrorHandler | None = None) -> str:
        if self.handler is None:
            return ""
        return self.handler.call_read(self.value, errh or ErrorHandler())

    def unparse(self) -> str:
        return f"{self.name} {self.value}".strip()
