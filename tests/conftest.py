"""Shared helpers: build and run routers in-process, or run the `click` program."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clickos.core.clock import Clock
from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.router import Router

BIN = os.path.join(os.path.dirname(sys.executable))


class Run:
    """A finished run: the router (for handler reads) and everything printed to errh."""

    def __init__(self, router: Router | None, errh: ErrorHandler) -> None:
        self.router = router
        self.errh = errh

    def read(self, name: str) -> str:
        assert self.router is not None
        v = self.router.call_read(name, self.errh)
        assert v is not None, self.errh.text()
        return v.strip()

    @property
    def errors(self) -> str:
        return self.errh.text()


def build(text: str, *, simtime: bool = False, filename: str = "config") -> Run:
    """Parse and initialize (but do not run) a configuration."""
    errh = ErrorHandler(echo=False)
    clock = Clock()
    if simtime:
        clock.set_simulation()
    master = Master(clock)
    r = Router.from_text(text, filename, errh, master=master)
    return Run(r, errh)


def run(text: str, *, simtime: bool = False, filename: str = "config") -> Run:
    """Build, then run the driver until the router stops."""
    res = build(text, simtime=simtime, filename=filename)
    assert res.router is not None, res.errors
    res.router.activate(res.errh)
    try:
        res.router.master.driver()
    finally:
        res.router.master.close()
    return res


def click(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the installed `click` program."""
    exe = os.path.join(BIN, "click")
    if not os.path.exists(exe):
        pytest.skip("click console script not installed in this environment")
    return subprocess.run([exe, *args], input=input, capture_output=True, text=True, timeout=timeout)
