"""Misbehaving elements, for testing that instances are contained.

These are not part of the element library: the zygote registers them only
when the daemon runs with ``--fault-elements`` (tests and demonstrations).
Each passes packets through unchanged until traffic triggers its fault, so
every fault happens "under traffic":

- ``FaultCrash(AFTER, SIGNAL)``: after AFTER packets the process kills itself
  with SIGNAL (default SEGV): a crash.
- ``FaultMemoryHog(BYTES)``: keeps BYTES of fresh, touched memory per packet
  forever: a memory bomb.
- ``FaultSpin(AFTER)``: after AFTER packets loops forever without returning
  to the driver: a busy loop (handlers stop answering).
- ``FaultForkBomb(AFTER)``: after AFTER packets forks children (which sleep)
  until fork fails; ``forks`` and ``fork_failures`` tell how it went.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, ClassVar

from clickos.core.args import Args
from clickos.core.confparse import parse_int, parse_word
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler


class _Fault(Element):
    register: ClassVar[bool] = False
    port_count: ClassVar[str] = "1/1"
    processing: ClassVar[str] = "a"

    def __init__(self) -> None:
        super().__init__()
        self.after = 1
        self.seen = 0

    def simple_action(self, batch: Any) -> Any:
        self.seen += len(batch)
        if self.seen >= self.after:
            self.fault()
        return batch

    def fault(self) -> None:
        raise NotImplementedError

    def add_handlers(self) -> None:
        self.add_read_handler("count", lambda: self.seen)


class FaultCrash(_Fault):
    """FaultCrash([AFTER, SIGNAL])

    Kills its own process with SIGNAL (default SEGV) after AFTER packets (default 1).
    """

    register: ClassVar[bool] = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.after = a.read_p("AFTER", parse_int, default=1)
        name = a.read_p("SIGNAL", parse_word, default="SEGV")
        a.complete()
        try:
            self.signo = signal.Signals["SIG" + name.upper().removeprefix("SIG")]
        except KeyError:
            raise ConfigError(f"unknown signal '{name}'") from None

    def fault(self) -> None:
        signal.signal(self.signo, signal.SIG_DFL)
        os.kill(os.getpid(), self.signo)
        time.sleep(1)


class FaultMemoryHog(_Fault):
    """FaultMemoryHog([BYTES])

    Holds BYTES (default 1048576) of touched memory per packet seen, forever.
    """

    register: ClassVar[bool] = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.bytes = a.read_p("BYTES", parse_int, default=1 << 20)
        a.complete()
        self.hoard: list[bytearray] = []
        self.after = 0

    def fault(self) -> None:
        self.hoard.append(bytearray(b"\x01") * self.bytes)


class FaultSpin(_Fault):
    """FaultSpin([AFTER])

    After AFTER packets (default 1), spins forever without returning.
    """

    register: ClassVar[bool] = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.after = a.read_p("AFTER", parse_int, default=1)
        a.complete()

    def fault(self) -> None:
        n = 0
        while True:
            n += 1


class FaultForkBomb(_Fault):
    """FaultForkBomb([AFTER])

    After AFTER packets (default 1), forks sleeping children until fork fails.
    Handlers: ``forks``, ``fork_failures`` (read).
    """

    register: ClassVar[bool] = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.after = a.read_p("AFTER", parse_int, default=1)
        a.complete()
        self.forks = 0
        self.failures = 0
        self.done = False

    def fault(self) -> None:
        if self.done:
            return
        self.done = True
        for _ in range(100_000):
            try:
                pid = os.fork()
            except OSError:
                self.failures += 1
                if self.failures >= 3:
                    return
                continue
            if pid == 0:
                time.sleep(3600)
                os._exit(0)
            self.forks += 1

    def add_handlers(self) -> None:
        super().add_handlers()
        self.add_read_handler("forks", lambda: self.forks)
        self.add_read_handler("fork_failures", lambda: self.failures)
