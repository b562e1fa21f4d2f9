"""The Element base class and ports.

An element subclass declares, as class attributes, what Click declares in its
C++ class: ``port_count`` ("1/1"), ``processing`` ("a", "h/l", ...),
``flow_code``, ``flags`` and ``configure_phase``.  It overrides ``configure``,
``initialize``, ``add_handlers`` and the packet methods:

- ``push(port, batch)`` receives a batch on a push input;
- ``pull(port, max)`` returns up to ``max`` packets (a batch) or None;
- ``simple_action(batch)`` is the shortcut for 1-in/1-out agnostic elements
  (the default push and pull call it), returning the batch to pass on or None.

Output goes through ``self.output(i).push(batch)``; pulls through
``self.input(i).pull(max)``.  Batches are never empty.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.portspec import PULL, PUSH
from clickos.packet.batch import PacketBatch

if TYPE_CHECKING:
    from clickos.core.router import Router

CONFIGURE_PHASE_FIRST = 0
CONFIGURE_PHASE_INFO = 20
CONFIGURE_PHASE_PRIVILEGED = 90
CONFIGURE_PHASE_DEFAULT = 100
CONFIGURE_PHASE_LAST = 2000

# Cleanup stages, as in Click: how far an element got before the router stopped.
CLEANUP_NO_ROUTER, CLEANUP_BEFORE_CONFIGURE, CLEANUP_CONFIGURE_FAILED = 0, 1, 2
CLEANUP_CONFIGURED, CLEANUP_INITIALIZE_FAILED, CLEANUP_INITIALIZED = 3, 4, 5
CLEANUP_ROUTER_INITIALIZED, CLEANUP_MANUAL = 6, 7


def _kill(batch: PacketBatch) -> None:
    batch.kill()


def _pull_nothing(max: int = 1) -> None:
    return None


class Port:
    """One side of a connection, as seen from its owner.

    ``push``/``pull`` are bound straight to the peer's method (a C-level partial),
    which keeps a hop between elements to one call.
    """

    __slots__ = ("owner", "index", "isoutput", "element", "peer_port", "processing", "push", "pull")

    def __init__(self, owner: Element, index: int, isoutput: bool) -> None:
        self.owner = owner
        self.index = index
        self.isoutput = isoutput
        self.element: Element | None = None
        self.peer_port = -1
        self.processing = PUSH
        self.push: Callable[[PacketBatch], None] = _kill
        self.pull: Callable[..., PacketBatch | None] = _pull_nothing

    def connect(self, element: Element, port: int) -> None:
        self.element = element
        self.peer_port = port
        if self.isoutput and self.processing == PUSH:
            self.push = partial(element.push, port)
        elif not self.isoutput and self.processing == PULL:
            self.pull = partial(element.pull, port)

    @property
    def active(self) -> bool:
        """Click's port_active: a push output or a pull input initiates transfers."""
        return (self.processing == PUSH) if self.isoutput else (self.processing == PULL)

    @property
    def is_push(self) -> bool:
        return self.processing == PUSH

    @property
    def is_pull(self) -> bool:
        return self.processing == PULL


class Element:
    """Base class of every element.  See the module docstring for the contract."""

    port_count: ClassVar[str] = "0/0"
    processing: ClassVar[str] = "a"
    flow_code: ClassVar[str] = "x/x"
    flags: ClassVar[str] = ""
    configure_phase: ClassVar[int] = CONFIGURE_PHASE_DEFAULT
    # Click name when it differs from the Python class name (or is not an identifier)
    click_name: ClassVar[str | None] = None
    # Registry: set False on abstract helper classes
    register: ClassVar[bool] = True
    # True when pushing k packets as one batch has exactly the effects of pushing
    # them one at a time (no per-packet side effects visible outside the element,
    # such as printing or handler calls).  Sources use it to coalesce BURST 1 runs.
    batch_transparent: ClassVar[bool] = False

    def __init__(self) -> None:
        self.router: Router = None  # type: ignore[assignment]
        self.eindex = -1
        self.name = ""
        self.landmark = ""
        self.config_string = ""
        self.inputs: list[Port] = []
        self.outputs: list[Port] = []
        self.handlers: dict[str, Any] = {}

    # -- identity ---------------------------------------------------------------------
    @classmethod
    def class_name(cls) -> str:
        return cls.click_name or cls.__name__

    def declaration(self) -> str:
        return f"{self.name} :: {self.class_name()}"

    def __repr__(self) -> str:
        return f"<{self.declaration()}>"

    def cast(self, name: str) -> Any:
        """Click's Element::cast: self if this element is (or derives from) ``name``."""
        for klass in type(self).__mro__:
            if klass is Element:
                break
            if issubclass(klass, Element) and klass.class_name() == name:
                return self
        return None

    # -- ports ------------------------------------------------------------------------
    @property
    def ninputs(self) -> int:
        return len(self.inputs)

    @property
    def noutputs(self) -> int:
        return len(self.outputs)

    def nports(self, isoutput: bool) -> int:
        return len(self.outputs) if isoutput else len(self.inputs)

    def input(self, i: int) -> Port:
        return self.inputs[i]

    def output(self, i: int) -> Port:
        return self.outputs[i]

    def set_nports(self, nin: int, nout: int) -> None:
        self.inputs = [Port(self, i, False) for i in range(nin)]
        self.outputs = [Port(self, i, True) for i in range(nout)]

    def port_active(self, isoutput: bool, port: int) -> bool:
        ports = self.outputs if isoutput else self.inputs
        return 0 <= port < len(ports) and ports[port].active

    def input_is_pull(self, i: int) -> bool:
        return self.inputs[i].processing == PULL

    def input_is_push(self, i: int) -> bool:
        return self.inputs[i].processing == PUSH

    def output_is_push(self, i: int) -> bool:
        return self.outputs[i].processing == PUSH

    def output_is_pull(self, i: int) -> bool:
        return self.outputs[i].processing == PULL

    def is_batch_transparent(self) -> bool:
        return self.batch_transparent

    def get_flow_code(self) -> str:
        return self.flow_code

    def get_processing(self) -> str:
        return self.processing

    def get_port_count(self) -> str:
        return self.port_count

    def flag_value(self, letter: str) -> int:
        """Click's flag_value: the number after ``letter`` in ``flags`` (1 if bare, -1 if absent)."""
        for word in self.flags.split():
            if word and word[0] == letter:
                rest = word[1:]
                return int(rest) if rest.isdigit() else 1
        return -1

    # -- lifecycle ---------------------------------------------------------------------
    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        """Parse configuration arguments; raise ConfigError (or report to errh)."""
        if conf:
            raise ConfigError("too many arguments")

    def add_handlers(self) -> None:
        """Declare element-specific handlers with add_read_handler/add_write_handler."""

    def initialize(self, errh: ErrorHandler) -> None:
        """Prepare to run (tasks, timers, notifiers); raise ConfigError on failure."""

    def cleanup(self, stage: int) -> None:
        """Release resources; ``stage`` says how far initialization got."""

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        """Hot-swap: adopt state (queued packets, counters) from ``old``, its predecessor."""

    def hotswap_element(self) -> Element | None:
        """The element of the old router to take state from (default: same name and class)."""
        old = getattr(self.router, "hotswap_router", None)
        if old is None:
            return None
        e = old.find(self.name)
        return e if e is not None and e.class_name() == self.class_name() else None

    def can_live_reconfigure(self) -> bool:
        return False

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        """Apply a new configuration while running.  By default (as in Click) an
        element that says it ``can_live_reconfigure`` simply reruns ``configure``."""
        if self.can_live_reconfigure():
            self.configure(conf, errh)
            return
        raise ConfigError(f"cannot reconfigure {self.declaration()} live")

    # -- notifiers (see core/notifier.py) -------------------------------------------
    def notifier(self, isoutput: bool, port: int, kind: str) -> Any:
        """The Notifier this element provides at a port for ``kind`` ("empty"/"full"), if any."""
        return None

    # -- packet processing ---------------------------------------------------------------
    def push(self, port: int, batch: PacketBatch) -> None:
        out = self.simple_action(batch)
        if out is not None:
            self.outputs[0].push(out)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        return self.simple_action(batch)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        return batch

    def fast_step(self) -> Any:
        """This element's step in a fused push path (``core/fastpath.py``): a
        ``clickos.packet.fusegen.Step`` doing what ``push`` does for the packets
        that go on out of output 0, or None (the default: not fusable)."""
        return None

    def checked_output_push(self, port: int, batch: PacketBatch) -> None:
        """Push to ``port`` if it exists, else drop the batch (Click's checked_output_push)."""
        if 0 <= port < len(self.outputs):
            self.outputs[port].push(batch)
        else:
            batch.kill()

    # -- handlers ----------------------------------------------------------------------
    def add_read_handler(self, name: str, fn: Callable[[], Any], flags: int = 0) -> None:
        self.router.handlers.add_read(self, name, fn, flags)

    def add_write_handler(self, name: str, fn: Callable[[str, ErrorHandler], Any], flags: int = 0) -> None:
        self.router.handlers.add_write(self, name, fn, flags)

    def add_data_handlers(self, name: str, obj: Any, attr: str, kind: str = "int", writable: bool = True) -> None:
        """Read (and optionally write) handler over ``obj.attr`` formatted as Click does."""
        self.router.handlers.add_data(self, name, obj, attr, kind, writable)

    def add_task_handlers(self, task: Any, prefix: str = "") -> None:
        self.router.handlers.add_task_handlers(self, task, prefix)

    # -- names defined by AddressInfo, PortInfo, ... ------------------------------------
    def resolve_name(self, kind: str, name: str) -> Any:
        """Look up ``name`` of ``kind`` (``ip``, ``ip_prefix``, ``ether``, ``port:6`` ...).

        The definitions live in ``router.attachments["NameInfo"][kind]`` keyed by
        compound prefix + name; the search goes outward from this element's
        compound, as Click's NameInfo does.  Args installs this as the resolver
        of confparse's parsers.
        """
        router = self.router
        if router is None:
            return None
        table = router.attachments.get("NameInfo", {}).get(kind)
        if not table:
            return None
        slash = self.name.rfind("/")
        prefix = self.name[: slash + 1] if slash >= 0 else ""
        while True:
            v = table.get(prefix + name)
            if v is not None:
                return v
            if not prefix:
                return None
            slash = prefix.rfind("/", 0, len(prefix) - 1)
            prefix = prefix[: slash + 1] if slash >= 0 else ""

    # -- helpers for subclasses ---------------------------------------------------------
    @property
    def pool(self) -> Any:
        return self.router.pool

    def now(self) -> int:
        return self.router.master.clock.now()

    def now_steady(self) -> int:
        return self.router.master.clock.now_steady()
