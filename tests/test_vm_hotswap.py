"""Installing a new configuration into a running instance (hot-swap)."""

from __future__ import annotations

import socket

import pytest

from clickos.vm.client import ApiError
from clickos.vm.testing import host_support, running_daemon, wait_for

SUPPORT = host_support()
pytestmark = pytest.mark.skipif(not (SUPPORT["root"] and SUPPORT["pidfd"]),
                                reason="instances need root (namespaces, cgroups) and pidfd_open")


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("vmhs")) as (daemon, client):
        yield daemon, client


def _cs_read(f, s: socket.socket, handler: str) -> str:
    s.sendall(f"READ {handler}\r\n".encode())
    line = f.readline()
    assert line.startswith(b"200"), line
    n = int(f.readline().split()[1])
    return f.read(n).decode()


def test_counter_continuity_across_installs(vm):
    _, c = vm
    r = c.create("hs", "src :: InfiniteSource(LIMIT 50, STOP false) -> c :: Counter -> Discard;")
    pid = r["pid"]
    wait_for(lambda: c.read("hs", "c.count") == "50")
    # a Click ControlSocket client connected before the swap keeps its connection
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(r["control_socket"])
    f = s.makefile("rb")
    assert f.readline().startswith(b"Click::ControlSocket")
    assert _cs_read(f, s, "c.count") == "50"

    r = c.install("hs", "src :: InfiniteSource(LIMIT 20, STOP false) -> c :: Counter -> Discard;")
    assert r["pid"] == pid                                   # same process: swapped in place
    wait_for(lambda: c.read("hs", "c.count") == "70")       # the new Counter took the old count
    assert _cs_read(f, s, "c.count") == "70"

    c.install("hs", "Idle -> c :: Counter -> Discard;")
    assert c.read("hs", "c.count") == "70"
    assert c.config("hs") == "Idle -> c :: Counter -> Discard;"
    assert [e["name"] for e in c.show("hs")["elements"] if e["class"] == "InfiniteSource"] == []

    # a bad configuration is refused with Click's messages; the running one stays
    with pytest.raises(ApiError) as ei:
        c.install("hs", "Idle -> c :: Counter(oops) -> Discard;", filename="new.click")
    assert ei.value.status == 400
    assert any(d.startswith("new.click:1: ") for d in ei.value.details), ei.value.details
    assert c.read("hs", "c.count") == "70"
    assert c.config("hs") == "Idle -> c :: Counter -> Discard;"
    assert _cs_read(f, s, "c.count") == "70"
    s.close()
    events = [e["event"] for e in c.show("hs")["events"]]
    assert events.count("configuration installed") == 2
    c.destroy("hs")


def test_install_keeps_state_of_matching_elements_only(vm):
    _, c = vm
    c.create("hs2", "a :: InfiniteSource(LIMIT 5, STOP false) -> c :: Counter -> d :: Counter -> Discard;")
    wait_for(lambda: c.read("hs2", "d.count") == "5")
    # 'c' keeps its count; the new 'e' starts from zero
    c.install("hs2", "Idle -> c :: Counter -> e :: Counter -> Discard;")
    assert c.read("hs2", "c.count") == "5"
    assert c.read("hs2", "e.count") == "0"
    c.destroy("hs2")


def test_restart_uses_the_installed_configuration(vm):
    _, c = vm
    c.create("hs3", "Idle -> c :: Counter -> Discard;")
    c.install("hs3", "InfiniteSource(LIMIT 3, STOP false) -> c :: Counter -> Discard;")
    c.stop("hs3")
    c.start("hs3", wait="first-packet")
    wait_for(lambda: c.read("hs3", "c.count") == "3")
    c.destroy("hs3")
