"""Helpers for tests and demonstrations: a daemon in this process, polling.

::

    with running_daemon(tmp_path, fault_elements=True) as (daemon, client):
        client.create("a", "Idle -> Discard")
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from clickos.vm import api
from clickos.vm.cgroup import CgroupManager
from clickos.vm.client import Client
from clickos.vm.daemon import Daemon, DaemonConfig


@contextlib.contextmanager
def running_daemon(run_dir: str | os.PathLike[str], **options: Any) -> Iterator[tuple[Daemon, Client]]:
    """A started daemon with its API on ``run_dir/clickos.sock``, and a client to it."""
    options.setdefault("prefork", 1)
    options.setdefault("warm_rounds", 10)
    cfg = DaemonConfig(run_dir=str(run_dir), **options)
    daemon = Daemon(cfg)
    daemon.start()
    server, _thread = api.serve(daemon, cfg.api_socket)
    client = Client(cfg.api_socket, timeout=60)
    try:
        yield daemon, client
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        daemon.close()


def wait_for(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``pred`` until it returns something true; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


def host_support() -> dict[str, Any]:
    """What this host lets instances have: root, namespaces, cgroup controllers."""
    root = os.geteuid() == 0
    controllers: list[str] = []
    if root:
        m = CgroupManager(tag=f"clickos-probe-{os.getpid()}")
        controllers = m.available
        m.close()
    return {"root": root, "controllers": controllers, "pidfd": hasattr(os, "pidfd_open")}
