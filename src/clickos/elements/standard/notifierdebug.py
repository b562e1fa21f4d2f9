"""NotifierDebug: shows the notifier signal seen at a point of the graph."""

from __future__ import annotations

from clickos.core.element import Element
from clickos.core.errors import ErrorHandler
from clickos.core.notifier import NotifierSignal, downstream_full_signal, upstream_empty_signal
from clickos.packet.batch import PacketBatch


class NotifierDebug(Element):
    """NotifierDebug()

    Passes packets through unchanged and reports the notifier signal there.

    In push context the ``signal`` handler shows the "full" signal of the
    notifiers downstream (whether there is room for more packets); in pull
    context it shows the "empty" signal of the notifiers upstream (whether
    packets may be waiting).  The text is Click's: each signal word as
    ``NAME/MASK:VALUE``, with ``*`` when active, joined by ``+``; or one of
    ``busy*``, ``idle``, ``overderived*``.

    Handlers: ``signal`` (read).

    Example: ``q :: Queue -> n :: NotifierDebug -> Unqueue -> Discard``, then
    read ``n.signal``.
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.signal = NotifierSignal.busy()

    def initialize(self, errh: ErrorHandler) -> None:
        if self.input_is_push(0):
            self.signal = downstream_full_signal(self, 0)
        else:
            self.signal = upstream_empty_signal(self, 0)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        return batch

    def add_handlers(self) -> None:
        self.add_read_handler("signal", lambda: self.signal.unparse(self.router))
