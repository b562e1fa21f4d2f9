"""Keeping instances' memory shared with the zygote (clickos.vm.pages): the
snapshot keeps every byte, hands back only pages equal to it, and an instance
forked from the zygote's native fork server boots and answers as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from clickos.vm.testing import host_support, running_daemon

SUPPORT = host_support()
needs_root = pytest.mark.skipif(not (SUPPORT["root"] and SUPPORT["pidfd"]),
                                reason="instances need root (namespaces, cgroups) and pidfd_open")
cpython_311 = pytest.mark.skipif(not (sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)),
                                 reason="the type cache's layout is CPython 3.11's")
linux_only = pytest.mark.skipif(not (sys.platform.startswith("linux") and os.path.exists("/proc/self/pagemap")
                                     and hasattr(os, "memfd_create")), reason="needs Linux (pagemap, memfd)")


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@linux_only
def test_snapshot_keeps_every_byte_and_hands_back_only_equal_pages():
    out = _run("""
        import hashlib, json, os
        from clickos.vm import pages
        data = [bytes([i % 251]) * 3000 for i in range(2000)]       # before: in the snapshot
        table = list(range(100_000))
        digest = hashlib.sha256(b"".join(data)).hexdigest()
        snap = pages.take()
        assert snap is not None
        # write pages and put them back as they were: handed back
        saved = table[:50_000]
        table[:50_000] = [-1] * 50_000
        table[:50_000] = saved
        n1 = snap.reshare()
        # change pages for good: kept
        table[::512] = [7] * len(table[::512])
        n2 = snap.reshare()
        assert hashlib.sha256(b"".join(data)).hexdigest() == digest
        assert table[:512] == [7] + list(range(1, 512)) and table[-1] == 99_999
        assert json.loads(json.dumps({"a": [1, 2, 3]})) == {"a": [1, 2, 3]}
        # and the process forks and goes on as usual
        pid = os.fork()
        if pid == 0:
            ok = hashlib.sha256(b"".join(data)).hexdigest() == digest and snap.reshare() >= 0
            os._exit(0 if ok else 1)
        assert os.waitpid(pid, 0)[1] == 0
        print(n1, n2)
    """)
    n1, n2 = (int(x) for x in out.split())
    assert n1 > 50
    assert n2 >= 0


def test_fill_pools_fills_partly_used_pools():
    out = _run("""
        from clickos.vm import pages
        print(pages.fill_pools(), pages.fill_pools(), pages.fill_malloc())
    """)
    first, second, _chunks = (int(x) for x in out.split())
    assert first > 0
    assert second < first  # the second finds (almost) nothing left to fill


def test_compact_code_moves_code_and_keeps_behaviour():
    out = _run("""
        import types
        from clickos.vm import pages
        def outer(n):
            f = lambda k: k * 2
            return sum(f(i) for i in range(n))
        class C:
            def m(self, x):
                return [y + 1 for y in range(x)]
        old = outer.__code__, C.m.__code__
        hot = [outer.__code__, C.m.__code__]
        assert pages.compact_code(hot) == 2
        assert outer.__code__ is not old[0] and C.m.__code__ is not old[1]
        assert outer(10) == 90 and C().m(3) == [1, 2, 3]
        print("ok")
    """)
    assert out.strip() == "ok"


def test_compact_code_gives_closures_names_of_their_own():
    out = _run("""
        import types
        from clickos.vm import pages
        def outer():
            return lambda k: k + 1
        lam = next(k for k in outer.__code__.co_consts if type(k) is types.CodeType)
        assert pages.compact_code([outer.__code__, lam], fresh_names={id(lam)}) == 2
        f = outer()
        assert f(1) == 2
        assert f.__qualname__ == "outer.<locals>.<lambda>" == lam.co_qualname
        assert f.__code__ is not lam and f.__code__.co_qualname is not lam.co_qualname
        assert f.__name__ == "<lambda>" and f.__code__.co_name is not lam.co_name
        print("ok")
    """)
    assert out.strip() == "ok"


def test_fill_numpy_empties_numpys_block_caches():
    out = _run("""
        import numpy as np
        from clickos.vm import pages
        junk = [np.empty(k, np.uint8) for k in range(1, 300)] + [np.empty((1, 1, 1)) for _ in range(5)]
        del junk                              # small blocks: kept in numpy's caches
        pages.fill_pools()
        pages.fill_malloc()
        taken = pages.fill_numpy()
        _, top = pages._heap()
        fresh = [np.empty(k, np.uint8) for k in range(1, 300)]
        below = sum(1 for a in fresh if a.__array_interface__["data"][0] < top)
        print(taken, below)
    """)
    taken, below = (int(x) for x in out.split())
    assert taken >= 250
    assert below == 0     # new arrays' data: fresh memory, not old blocks from a cache


@linux_only
def test_restore_types_puts_back_the_snapshots_entries():
    out = _run("""
        import ctypes, json, sys
        import numpy as np
        from clickos.vm import pagesnative as pn
        names = ["".join(["name", str(i)]) for i in range(6)]
        lonely = "".join(["lonely", "!"])
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(lonely))     # the (pretend) cache's reference
        addr_lonely = id(lonely)
        del lonely
        a = [id(n) for n in names]
        for n in (names[0], names[4], names[5]):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(n))      # the cache's references now
        # the snapshot's entries (version, name, value) and the ones now
        snap = np.array([1, a[0], 10,   7, a[1], 11,   8, a[2], 12,   9, a[3], 13], np.uint64)
        now = np.array([1, a[0], 10,   3, a[4], 21,   4, a[5], 22,   5, addr_lonely, 23], np.uint64)
        pinned = np.array(sorted([a[0], a[1], a[3], id(None)]), np.uint64)    # (not a[2])
        rows = np.zeros((1, 5), np.int64)
        rows[0] = (now.ctypes.data, now.ctypes.data + 4096, 0, 3, pn.K_OURS | pn.K_PRIVATE_RW)
        have = np.ones(4, np.uint8)
        ents = np.zeros(8, np.uint64)
        before = [sys.getrefcount(n) for n in names]
        done = pn.restore_types(now, pinned, snap.ctypes.data, rows, 1, have, ents)
        after = [sys.getrefcount(n) for n in names]
        print(json.dumps({"done": done, "deltas": [y - x for x, y in zip(before, after)],
                          "entries": list(now) == [1, a[0], 10, 7, a[1], 11, 4, a[5], 22, 5, addr_lonely, 23],
                          "lonely": ctypes.c_ssize_t.from_address(addr_lonely).value}))
    """)
    r = json.loads(out)
    assert r["done"] == 1 and r["entries"]         # only the entry that can be put back safely
    assert r["deltas"] == [0, 1, 0, 0, -1, 0]      # the cache's references moved with it
    assert r["lonely"] == 1                        # a name whose last reference is the cache's: kept


@cpython_311
def test_type_cache_is_found():
    out = _run("""
        from clickos.vm import pages
        tc = pages.TypeCache()
        assert tc.locate()
        class K:
            pass
        name = "".join(["not", "_an_attribute"])
        getattr(K, name, None)
        print(id(name) in {int(x) for x in tc.words[1::3]}, len(tc.words))
    """)
    assert out.split() == ["True", "12288"]


@needs_root
def test_written_code_finds_the_code_a_real_instance_writes():
    out = _run("""
        import json
        from clickos.core import registry
        from clickos.vm import instance
        registry.load_all()
        instance.warm_boot(3)
        def never_run(x):
            return x + 1
        code = [instance.Instance.main.__code__, instance.child_main.__code__, never_run.__code__]
        written = instance.written_code(code, ["uts"])
        print(json.dumps([id(c) in written for c in code]))
    """)
    # (the idle instance's frames hold the first two: their reference counts differ)
    assert json.loads(out) == [True, True, False]


@needs_root
def test_instances_fork_from_the_snapshot_and_hand_pages_back(tmp_path):
    with running_daemon(tmp_path, prefork=2, prefork_warm=1) as (daemon, client):
        info = client.info()
        assert info["zygote"]["snapshot"] is True
        client.create("a", "InfiniteSource(LIMIT 1, STOP false) -> c :: Counter -> Discard;", wait="first-packet")
        client.create("b", "c :: Counter; Idle -> c -> Discard;")
        assert client.read("a", "c.count") == "1"
        assert client.read("b", "c.count") == "0"
        pid = client.show("b")["pid"]
        assert "clickos-snapshot" in open(f"/proc/{pid}/maps").read()
        # nothing of the zygote's is left open in an instance (but its own /proc files)
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert sum("eventpoll" in f for f in fds) == 1, fds
        assert not any("memfd" in f or "smaps" in f for f in fds), fds
        # idle, it has let go of the snapshot's pages it does not use, and put
        # the interpreter's type cache back as the zygote has it
        zygote = info["zygote"]["pid"]
        time.sleep(0.2)
        assert _snapshot_rss_kb(pid) < _snapshot_rss_kb(zygote) / 4
        offset = _type_cache_offset()
        if offset is not None:
            mine, theirs = _type_cache(pid, offset), _type_cache(zygote, offset)
            assert sum(a != b for a, b in zip(mine, theirs, strict=True)) < 32
        client.destroy("a")
        client.destroy("b")
    with running_daemon(tmp_path / "plain", snapshot=False) as (daemon, client):
        assert client.info()["zygote"]["snapshot"] is False
        client.create("c", "c :: Counter; Idle -> c -> Discard;")
        assert client.read("c", "c.count") == "0"


def _snapshot_rss_kb(pid: int) -> int:
    """Resident kB of the snapshot's private mappings in process ``pid``."""
    total, ours = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 2)
            if "-" in head[0] and all(c in "0123456789abcdef-" for c in head[0]):
                ours = "clickos-snapshot" in line and head[1].endswith("p")
            elif ours and head[0] == "Rss:":
                total += int(head[1])
    return total


def _libpython_base(pid: int | str) -> int | None:
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if "libpython" in line:
                return int(line.split("-", 1)[0], 16)
    return None


def _type_cache_offset() -> int | None:
    """Where the type cache is in libpython (found in this process), or None."""
    from clickos.vm import pages

    tc = pages.TypeCache()
    base = _libpython_base("self")
    if base is None or not tc.locate():
        return None
    return tc.words.ctypes.data - base


def _type_cache(pid: int, offset: int) -> list[bytes]:
    base = _libpython_base(pid)
    assert base is not None
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(base + offset)
        data = f.read(4096 * 24)
    return [data[i: i + 24] for i in range(0, len(data), 24)]
