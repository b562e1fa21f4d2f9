"""Instances through the daemon's REST API: lifecycle, every error code, the
OpenAPI description, logs, the Click ControlSocket of an instance, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import stat

import pytest

from clickos.vm.client import ApiError, Client
from clickos.vm.testing import host_support, running_daemon, wait_for

SUPPORT = host_support()
pytestmark = pytest.mark.skipif(not (SUPPORT["root"] and SUPPORT["pidfd"]),
                                reason="instances need root (namespaces, cgroups) and pidfd_open")

BOOT = "InfiniteSource(LIMIT 1, STOP false) -> c :: Counter -> Discard;"
IDLE = "c :: Counter; Idle -> c -> Discard;"


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("vm"), fault_elements=True, stop_grace=0.5,
                        request_timeout=1.0) as (daemon, client):
        yield daemon, client


def _err(fn, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as ei:
        fn(*args, **kw)
    return ei.value


def test_lifecycle(vm):
    daemon, c = vm
    r = c.create("life", BOOT, wait="first-packet")
    assert r["state"] == "running" and r["pid"] > 0
    assert r["timing"]["first_packet_ms"] > 0
    assert c.read("life", "c.count") == "1"
    names = [i["name"] for i in c.list()]
    assert "life" in names
    s = c.show("life")
    assert s["state"] == "running" and s["config"] == BOOT
    assert s["memory"]["pss_bytes"] > 0 and s["memory"]["uss_bytes"] > 0
    counts = {e["name"]: e.get("count") for e in s["elements"]}
    assert counts["c"] == 1
    assert s["boot"]["first_packet_ms"] is not None
    assert s["responsive"] is True
    pid = r["pid"]
    r = c.stop("life")
    assert r["state"] == "stopped" and r["pid"] is None
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert c.show("life")["last_exit"]["failure"] is False
    r = c.start("life", wait="first-packet")
    assert r["state"] == "running" and r["pid"] != pid
    assert c.read("life", "c.count") == "1"
    assert c.config("life") == BOOT
    c.destroy("life")
    assert "life" not in [i["name"] for i in c.list()]


def test_create_without_start_and_stats(vm):
    _, c = vm
    r = c.create("later", BOOT, start=False)
    assert r["state"] == "created" and r["pid"] is None
    r = c.start("later", wait="first-packet")
    assert r["state"] == "running"
    c.destroy("later")
    c.create("counted", BOOT, stats=True, wait="first-packet")
    els = {e["name"]: e for e in c.show("counted")["elements"]}
    assert els["c"]["packets"] == 1 and els["Discard@3"]["packets"] == 1
    c.destroy("counted")


def test_error_400_bad_configuration_carries_click_messages(vm):
    _, c = vm
    e = _err(c.create, "bad", "InfiniteSource -> Counter(x) -> Discard;\nnope :: NoSuchElement;",
             filename="fw.click")
    assert e.status == 400
    text = "\n".join(e.details)
    assert "fw.click:2: unknown element class 'NoSuchElement'" in text or "fw.click:1:" in text
    e = _err(c.create, "bad", "InfiniteSource -> Counter(x) -> Discard;", filename="fw.click")
    assert e.status == 400
    assert any(line.startswith("fw.click:1: ") for line in e.details), e.details
    assert "Router could not be initialized!" in e.details
    # the name was not kept
    assert "bad" not in [i["name"] for i in c.list()]
    c.create("bad", IDLE)
    c.destroy("bad")


def test_error_400_bad_requests(vm):
    _, c = vm
    assert _err(c.create, "x y", IDLE).status == 400                       # bad name
    assert _err(c.request, "POST", "/instances", {"name": "n"}).status == 400   # no config
    assert _err(c.create, "n", IDLE, limits={"memory": "lots"}).status == 400
    assert _err(c.create, "n", IDLE, limits={"bogus": 1}).status == 400
    assert _err(c.create, "n", IDLE, restart="sometimes").status == 400
    assert _err(c.create, "n", IDLE, wait="forever").status == 400
    # not JSON at all
    conn = c._sock or None
    raw = _raw(c.socket_path, b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{oops")
    assert raw.startswith(b"HTTP/1.1 400")
    assert conn is c._sock


def _error_or_none(fn, *args):
    try:
        fn(*args)
    except ApiError as e:
        return e
    return None


def _raw(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_error_413_body_too_large(vm):
    _, c = vm
    raw = _raw(c.socket_path, b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{")
    assert raw.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in raw.split(b"\r\n\r\n")[0]


def test_error_404_409_405(vm):
    _, c = vm
    for fn, args in ((c.show, ("ghost",)), (c.stop, ("ghost",)), (c.start, ("ghost",)), (c.destroy, ("ghost",)),
                     (c.read, ("ghost", "c.count")), (c.write, ("ghost", "c.reset")), (c.logs, ("ghost",)),
                     (c.install, ("ghost", IDLE))):
        e = _err(fn, *args)
        assert e.status == 404, (fn, e)
        assert "ghost" in e.message
    assert _err(c.request, "GET", "/nothing/here").status == 404
    c.create("taken", IDLE)
    e = _err(c.create, "taken", IDLE)
    assert e.status == 409 and "taken" in e.message
    assert _err(c.start, "taken").status == 409                  # already running
    c.stop("taken")
    assert _err(c.read, "taken", "c.count").status == 409        # not running
    assert _err(c.install, "taken", IDLE).status == 409
    e = _err(c.request, "DELETE", "/instances")
    assert e.status == 405
    c.destroy("taken")


def test_error_422_handler_errors(vm):
    _, c = vm
    c.create("h", BOOT, wait="first-packet")
    e = _err(c.read, "h", "nosuch.count")
    assert e.status == 422 and e.body["error"]["control_code"] == 510
    e = _err(c.read, "h", "c.nosuch")
    assert e.status == 422 and e.body["error"]["control_code"] == 511
    e = _err(c.write, "h", "c.count", "3")                      # a read-only handler
    assert e.status == 422
    e = _err(c.write, "h", "InfiniteSource@1.limit", "many")     # the handler rejects the value
    assert e.status == 422
    # good calls still work
    c.write("h", "c.reset")
    assert c.read("h", "c.count") == "0"
    assert c.read("h", "config").strip().startswith("InfiniteSource")
    c.destroy("h")


def test_error_504_unresponsive_instance(vm):
    daemon, c = vm
    c.create("spin", "RatedSource(RATE 100) -> s :: FaultSpin(AFTER 5) -> Discard;")
    assert c.read("spin", "s.count") in ("0", "1", "2", "3", "4")
    e = wait_for(lambda: _error_or_none(c.read, "spin", "config"))
    assert e.status == 504
    r = c.stop("spin")                                           # SIGTERM is ignored: SIGKILL after grace
    assert r["state"] == "stopped"
    assert "killed" in c.show("spin")["last_exit"]["reason"]
    c.destroy("spin")


def test_openapi_and_info(vm):
    _, c = vm
    doc = c.openapi()
    assert doc["openapi"].startswith("3.")
    for path in ("/instances", "/instances/{name}", "/instances/{name}/config", "/instances/{name}/start",
                 "/instances/{name}/stop", "/instances/{name}/handlers/{handler}", "/instances/{name}/logs"):
        assert path in doc["paths"], path
    assert set(doc["paths"]["/instances"]) == {"get", "post"}
    for code in ("201", "400", "409"):
        assert code in doc["paths"]["/instances"]["post"]["responses"]
    assert "422" in doc["paths"]["/instances/{name}/handlers/{handler}"]["get"]["responses"]
    info = c.info()
    assert info["zygote"]["pid"] > 0
    assert "cgroups" in info


def test_socket_mode_and_logs(vm):
    daemon, c = vm
    mode = stat.S_IMODE(os.stat(daemon.cfg.api_socket).st_mode)
    assert mode == 0o600
    c.create("talk", "InfiniteSource(LIMIT 2, STOP false) -> Print(hello) -> Discard;", wait="first-packet")
    text = wait_for(lambda: "hello" in c.logs("talk") and c.logs("talk"))
    assert text.count("hello:") == 2
    assert "hello" in c.logs("talk", tail=1)
    c.destroy("talk")
    assert not os.path.exists(os.path.join(daemon.log_dir, "talk.log"))


def test_instance_speaks_click_controlsocket(vm):
    _, c = vm
    r = c.create("cs", BOOT, wait="first-packet")
    path = r["control_socket"]
    assert path and stat.S_ISSOCK(os.stat(path).st_mode)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        f = s.makefile("rb")
        assert f.readline().startswith(b"Click::ControlSocket/1.3")
        s.sendall(b"READ c.count\r\n")
        assert f.readline().startswith(b"200")
        assert f.readline() == b"DATA 1\r\n"
        assert f.read(1) == b"1"
    c.destroy("cs")
    assert not os.path.exists(path)


def test_cli(vm, capsys):
    from clickos.vm.cli import vm_main

    daemon, _ = vm
    sock = daemon.cfg.api_socket
    assert vm_main(["--socket", sock, "create", "clitest", "-e", BOOT, "--wait", "first-packet"]) == 0
    assert "clitest: running" in capsys.readouterr().out
    assert vm_main(["list", "--socket", sock]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["NAME", "STATE", "PID"] and "clitest" in out
    assert vm_main(["read", "--socket", sock, "clitest", "c.count"]) == 0
    assert capsys.readouterr().out.strip() == "1"
    assert vm_main(["show", "--json", "--socket", sock, "clitest"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "clitest"
    assert vm_main(["show", "--socket", sock, "clitest"]) == 0
    assert "ELEMENT" in capsys.readouterr().out
    assert vm_main(["read", "--socket", sock, "clitest", "c.nosuch"]) == 1
    assert "No handler named" in capsys.readouterr().err
    assert vm_main(["create", "--socket", sock, "clitest", "-e", "Idle -> Discard"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert vm_main(["destroy", "--socket", sock, "clitest"]) == 0
    with contextlib.redirect_stdout(io.StringIO()):
        assert vm_main(["info", "--socket", sock]) == 0


def test_keepalive_client_reuses_connection(vm):
    daemon, _ = vm
    with Client(daemon.cfg.api_socket) as c:
        c.list()
        conn = c._sock
        c.info()
        assert c._sock is conn
