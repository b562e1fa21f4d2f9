"""Push fuzz packets through element configurations and check that nothing breaks.

For each :class:`~clickos.fuzz.targets.Target` the runner builds a router

    fuzz_src[i] -> (input i of the element(s) under test) ;  (output j) -> fuzz_sink_j

from the target's Click text, with a simulated clock, and pushes batches of
1..256 packets from :class:`~clickos.fuzz.packets.PacketGenerator` into a
random input, advancing the clock (and running timers and tasks) between
batches.  Failures are:

- any exception out of a push, a timer or a task (recorded with its traceback;
  the failing batch is regenerated in a fresh router and replayed one packet
  at a time to find the offending packet, whose bytes and annotations are
  recorded in hex);
- an output packet whose data does not lie inside its slot, that is already
  on the pool's free stack (use after free), or that appears twice in a batch;
- after each batch, a pool whose free stack holds a slot twice or out of range
  (double free), or whose free slots plus the slots the elements legitimately
  hold (ARPQuerier's waiting packets, AggregateIPFlows' held fragments, queue
  contents) do not add up to all slots (a leak).

After a failure the router is rebuilt and fuzzing goes on, so one run reports
every distinct problem.  Everything is seeded: the same seed gives the same
packets, the same counts and the same failures.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from clickos.core import portspec
from clickos.core.clock import Clock
from clickos.core.element import Element
from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.router import Router
from clickos.fuzz.packets import CATEGORY_WEIGHTS, Bank, PacketGenerator, build_bank
from clickos.fuzz.targets import Target, all_targets
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

MAX_FAILURE_RECORDS = 8      # distinct failures recorded per target; repeats are only counted
MAX_VIOLATION_TEXT = 400
_LOW = 0 if sys.byteorder == "little" else 3   # the low byte of a native 32-bit annotation


def _limit_annos(pool: PacketPool, idx: np.ndarray, offsets: tuple[int, ...]) -> None:
    """Keep the 32-bit annotations at ``offsets`` below 16 (see Target.small_anno)."""
    for a in offsets:
        low = pool.anno[idx, a + _LOW] & 15
        pool.anno[idx, a: a + 4] = 0
        pool.anno[idx, a + _LOW] = low

# -- the harness elements ------------------------------------------------------------------------------


class FuzzSource(Element):
    """Pushes the batches the runner hands it out of output ``port``."""

    register = False
    port_count = "0/-"
    processing = "h"


class FuzzSink(Element):
    """Counts, checks and frees every packet it receives.

    Per packet it checks the slot number and that the data lies inside the slot.
    A packet emitted twice, or emitted after its element freed it, is freed twice
    here; the pool check after the batch reports that as a double free.
    """

    register = False
    port_count = "1/0"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.violations: list[str] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        pool = batch.pool
        idx = batch.idx
        n = len(idx)
        self.count += n
        if n == 1:      # the common case for per-packet elements: scalar checks
            s = int(idx[0])
            if not 0 <= s < pool.nslots:
                self.violations.append(f"{self.name}: slot number {s} outside the pool")
                return
            o, ln = int(pool.off[s]), int(pool.length[s])
            if o < 0 or ln < 0 or o + ln > pool.slot_size:
                self.violations.append(f"{self.name}: packet outside its slot: slot {s} off {o} length {ln} "
                                       f"slot size {pool.slot_size}")
                return
            pool.release1(s)
            return
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iu":
            self.violations.append(f"{self.name}: batch index array has dtype {idx.dtype}")
            return
        bad_slot = (idx < 0) | (idx >= pool.nslots)
        if bad_slot.any():
            self.violations.append(f"{self.name}: slot numbers outside the pool: {idx[bad_slot][:8].tolist()}")
            idx = idx[~bad_slot]
        off = pool.off[idx].astype(np.int64)
        ln = pool.length[idx].astype(np.int64)
        bad = (off < 0) | (ln < 0) | (off + ln > pool.slot_size)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            self.violations.append(f"{self.name}: packet outside its slot: slot {int(idx[k])} off {int(off[k])} "
                                   f"length {int(ln[k])} slot size {pool.slot_size}")
            idx = idx[~bad]
        if len(idx):
            pool.release(idx)


# -- slots legitimately held inside elements ------------------------------------------------------------


def _arpquerier_held(e: Any) -> list[int]:
    t = getattr(e, "arpt", None)
    if t is None:
        return []
    return [s for entry in t.table.values() for s in entry.queue]


def _aggregate_held(e: Any) -> list[int]:
    return [s for m in (e.tcp_map, e.udp_map) for hp in m.values() for s in hp.frags]


HELD_SLOTS: dict[str, Callable[[Any], list[int]]] = {
    "ARPQuerier": _arpquerier_held,
    "AggregateIPFlows": _aggregate_held,
}


def held_slots(router: Router) -> np.ndarray:
    """Slots that elements of ``router`` hold on purpose (queued, waiting)."""
    out: list[int] = []
    for e in router.elements:
        fn = HELD_SLOTS.get(e.class_name())
        if fn is not None:
            out.extend(fn(e))
    return np.array(out, np.int64)


def check_pool(pool: PacketPool, held: np.ndarray) -> list[str]:
    """Pool invariants: no double free, no leak.  Returns the violations."""
    problems: list[str] = []
    free = pool.free[: pool.nfree].astype(np.int64)
    if pool.nfree < 0 or pool.nfree > pool.nslots:
        return [f"free count {pool.nfree} outside 0..{pool.nslots} (double free)"]
    if len(free) and (free.min() < 0 or free.max() >= pool.nslots):
        problems.append("free stack holds slot numbers outside the pool")
        free = free[(free >= 0) & (free < pool.nslots)]
    counts = np.bincount(free, minlength=pool.nslots)
    if len(counts) and counts.max() > 1:
        problems.append(f"double free: slots on the free stack twice: {np.flatnonzero(counts > 1)[:8].tolist()}")
    if len(held):
        hc = np.bincount(held, minlength=pool.nslots)
        if hc.max() > 1:
            problems.append(f"a slot is held twice inside elements: {np.flatnonzero(hc > 1)[:8].tolist()}")
        both = np.flatnonzero((hc > 0) & (counts[: len(hc)] > 0))
        if len(both):
            problems.append(f"slots held by an element are also free (use after free): {both[:8].tolist()}")
    in_use = pool.nslots - pool.nfree
    if not problems and in_use != len(held):
        problems.append(f"slot leak: {in_use} slots in use but elements hold {len(held)}")
    return problems


# -- results ----------------------------------------------------------------------------------------------


@dataclass
class Failure:
    """One exception or invariant violation."""

    kind: str                      # "exception" or "invariant"
    batch: int                     # batch number within the target's run
    batch_seed: int
    batch_size: int
    input_port: int
    message: str
    traceback: str = ""
    packet: dict[str, Any] | None = None   # the offending packet, when isolation found one
    isolated: str = ""             # what isolation found
    signature: str = ""            # failures with the same signature are counted, not recorded again
    count: int = 1                 # how many batches failed this way


@dataclass
class TargetResult:
    label: str
    config: str
    pushed: int = 0
    batches: int = 0
    out: list[int] = field(default_factory=list)
    held: int = 0
    dropped: int = 0               # pushed - emitted - held (negative: the element made packets)
    exceptions: int = 0
    invariant_failures: int = 0
    failures: list[Failure] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    seconds: float = 0.0
    setup_error: str = ""
    crashed: str = ""              # the process running the target died
    pool_slots: int = 0            # the pool's size at the end (slots, bytes a slot)
    slot_size: int = 0

    @property
    def ok(self) -> bool:
        return not (self.exceptions or self.invariant_failures or self.setup_error or self.crashed)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["packets_per_second"] = round(self.pushed / self.seconds) if self.seconds > 0 else 0
        return d


# -- building a target router ---------------------------------------------------------------------------


def _port_range_max(e: Element, isoutput: bool) -> int:
    r = portspec.resolve_nports(e.get_port_count(), 64, 64)
    if r is None:
        return 1
    n = r[1] if isoutput else r[0]
    return 1 if n >= 64 else n


class Harness:
    """One router for one target: the source, the sinks and the simulated clock."""

    def __init__(self, target: Target, tmpdir: str, seed: int = 1) -> None:
        from clickos.elements.standard.info import click_srandom

        self.target = target
        # randomized elements (RandomSample, rewriters' port choice, IPRateMonitor's
        # sampling) draw from the shared generator: seed it, so runs repeat
        click_srandom(_mix(seed, target.label, "elements"))
        clock = Clock()
        clock.set_simulation()
        self.master = Master(clock)
        self.errh = ErrorHandler(echo=False)
        self.sinks: list[FuzzSink] = []
        self.src: FuzzSource | None = None
        self.ins: list[tuple[str, int]] = []
        self.outs: list[tuple[str, int]] = []
        text = target.config.replace("{tmp}", tmpdir)
        self.router = Router.from_text(text, f"fuzz:{target.label}", self.errh, master=self.master,
                                       extra=self._attach)
        if self.router is None:
            raise RuntimeError("configuration failed: " + " / ".join(self.errh.lines[-6:]))
        self.router.activate()
        self.pool = self.router.pool

    def _attach(self, r: Router) -> None:
        t = self.target
        e = r.find(t.element)
        if e is None:
            raise RuntimeError(f"no element named {t.element!r} in {t.config!r}")
        self.ins = list(t.ins) if t.ins is not None else [(t.element, i) for i in range(
            t.nin if t.nin is not None else _port_range_max(e, False))]
        self.outs = list(t.outs) if t.outs is not None else [(t.element, j) for j in range(
            t.nout if t.nout is not None else _port_range_max(e, True))]
        self.src = r.add_element(FuzzSource(), "fuzz_src")  # type: ignore[assignment]
        for i, (name, port) in enumerate(self.ins):
            r.add_connection(self.src.eindex, i, r.find(name).eindex, port)  # type: ignore[union-attr]
        for j, (name, port) in enumerate(self.outs):
            sink = r.add_element(FuzzSink(), f"fuzz_sink{j}")
            self.sinks.append(sink)  # type: ignore[arg-type]
            r.add_connection(r.find(name).eindex, port, sink.eindex, 0)  # type: ignore[union-attr]

    def push(self, port: int, batch: PacketBatch) -> None:
        assert self.src is not None
        self.src.outputs[port].push(batch)

    def advance(self, dt_ns: int) -> None:
        """Move simulated time on and run what became due (timers, then tasks)."""
        m = self.master
        clock = m.clock
        clock.jump_steady(clock.peek(True) + dt_ns)
        m.run_timers()
        m.process_pending()
        if m.active:
            m.run_tasks(32)

    def violations(self) -> list[str]:
        v: list[str] = []
        for s in self.sinks:
            v.extend(s.violations)
            s.violations = []
        return v

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.router.cleanup()


def _exception_signature(ex: BaseException) -> str:
    """Exception type and the innermost frame: one signature per distinct bug."""
    tb = traceback.extract_tb(ex.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
    return f"{type(ex).__name__} at {where}"


def _exception_message(ex: BaseException) -> str:
    msg = f"{type(ex).__name__}: {ex}"
    tb = traceback.extract_tb(ex.__traceback__)
    if tb and tb[-1].name in ("release", "release1") and tb[-1].filename.endswith("pool.py"):
        msg += " (the pool's free stack overflowed: a slot was freed twice)"
    return msg


def _mix(*parts: object) -> int:
    """A stable 31-bit seed from the parts (independent of PYTHONHASHSEED)."""
    h = 0
    for p in parts:
        h = zlib.crc32(repr(p).encode(), h)
    return h & 0x7FFFFFFF


def _packet_record(pool: PacketPool, s: int) -> dict[str, Any]:
    o, n = int(pool.off[s]), int(pool.length[s])

    def rel(v: int) -> int | None:
        return None if v == -1 else v - o

    return {"hex": pool.data[s, o: o + n].tobytes().hex(), "length": n, "offset_in_slot": o,
            "slot_size": pool.slot_size, "nh": rel(int(pool.nh[s])), "th": rel(int(pool.th[s])),
            "mac": rel(int(pool.mac[s])), "anno": pool.anno[s].tobytes().hex(), "ptype": int(pool.ptype[s]),
            "ts": int(pool.ts[s])}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Send what elements print (IPPrint, chatter, first-bad-packet reports) to /dev/null."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        yield


class Runner:
    """Runs targets; one instance per process (it owns the template bank)."""

    def __init__(self, seed: int = 1, bank: Bank | None = None) -> None:
        self.seed = seed
        self.bank = bank if bank is not None else build_bank(seed)

    def batch_plan(self, target: Target, packets: int) -> Iterator[tuple[int, int, int, int]]:
        """(batch number, size, input choice, clock step) for each batch: the
        sizes mix 1..256 with many singles and many full batches."""
        rng = np.random.default_rng(_mix(self.seed, target.label, "plan"))
        done = b = 0
        while done < packets:
            r = rng.random()
            if r < 0.2:
                n = int(rng.integers(1, 9))
            elif r < 0.35:
                n = 256
            else:
                n = int(rng.integers(1, 257))
            n = min(n, packets - done)
            r = rng.random()
            if r < 0.9:
                dt = int(rng.integers(0, 10_000_000))          # < 10 ms
            elif r < 0.99:
                dt = int(rng.integers(0, 2_000_000_000))       # < 2 s
            else:
                dt = int(rng.integers(10, 120)) * 1_000_000_000  # a long pause: timeouts fire
            yield b, n, int(rng.integers(0, 1 << 30)), dt
            done += n
            b += 1

    def run_target(self, target: Target, packets: int, progress: Callable[[str], None] | None = None) -> TargetResult:
        res = TargetResult(target.label, target.config)
        gen = PacketGenerator(self.seed, bank=self.bank)
        ncat = len(CATEGORY_WEIGHTS)
        cats = np.zeros(ncat, np.int64)
        t_start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="clickos-fuzz-") as tmpdir, _quiet():
            try:
                h = Harness(target, tmpdir, self.seed)
            except Exception as ex:  # noqa: BLE001 - a bad target is reported, not fatal
                res.setup_error = f"{type(ex).__name__}: {ex}"
                res.seconds = time.perf_counter() - t_start
                return res
            out = np.zeros(len(h.outs), np.int64)
            nin = len(h.ins)
            for b, n, choice, dt in self.batch_plan(target, packets):
                port = choice % nin
                gen.set_profile(target.profile_of(port))
                bseed = _mix(self.seed, target.label, b)
                ts_base = h.master.clock.now()
                idx = h.pool.alloc(n)
                kinds = gen.fill(h.pool, idx, bseed, ts_base)
                _limit_annos(h.pool, idx, target.small_anno)
                cats += np.bincount(kinds, minlength=ncat)[:ncat]
                failure: Failure | None = None
                try:
                    h.push(port, PacketBatch(h.pool, idx))
                    h.advance(dt)
                except Exception as ex:  # noqa: BLE001 - this is what we are looking for
                    res.exceptions += 1
                    failure = Failure("exception", b, bseed, n, port, _exception_message(ex),
                                      traceback.format_exc(), signature=_exception_signature(ex))
                else:
                    problems = h.violations()
                    held = held_slots(h.router)
                    problems += check_pool(h.pool, held)
                    if problems:
                        res.invariant_failures += 1
                        text = "; ".join(problems)
                        failure = Failure("invariant", b, bseed, n, port, text[:MAX_VIOLATION_TEXT],
                                          signature=re.sub(r"-?\d+", "N", text))
                res.pushed += n
                res.batches += 1
                if failure is not None:
                    seen = next((f for f in res.failures if f.signature == failure.signature), None)
                    if seen is not None:
                        seen.count += 1
                    elif len(res.failures) < MAX_FAILURE_RECORDS:
                        if failure.kind == "exception":
                            self._isolate(target, tmpdir, failure, gen, ts_base)
                        res.failures.append(failure)
                    out += np.array([s.count for s in h.sinks], np.int64)
                    h.close()
                    h = Harness(target, tmpdir, self.seed)
                if progress is not None and b % 2000 == 1999:
                    progress(f"{target.label}: {res.pushed}/{packets}")
            out += np.array([s.count for s in h.sinks], np.int64)
            res.held = len(held_slots(h.router))
            res.pool_slots, res.slot_size = h.pool.nslots, h.pool.slot_size
            h.close()
        res.out = out.tolist()
        res.dropped = res.pushed - int(out.sum()) - res.held
        res.categories = cats.tolist()
        res.seconds = time.perf_counter() - t_start
        return res

    def _isolate(self, target: Target, tmpdir: str, failure: Failure, gen: PacketGenerator, ts_base: int) -> None:
        """Replay the failing batch, one packet at a time, in a fresh router."""
        try:
            h = Harness(target, tmpdir, self.seed)
        except Exception as ex:  # noqa: BLE001
            failure.isolated = f"could not rebuild the router: {ex}"
            return
        pool = h.pool
        idx = pool.alloc(failure.batch_size)
        gen.fill(pool, idx, failure.batch_seed, ts_base)
        _limit_annos(pool, idx, target.small_anno)
        records = [_packet_record(pool, int(s)) for s in idx]
        for k, s in enumerate(idx.tolist()):
            try:
                h.push(failure.input_port, PacketBatch.one(pool, s))
            except Exception as ex:  # noqa: BLE001
                failure.packet = records[k]
                failure.isolated = (f"packet {k} of the batch, pushed by itself, raises {type(ex).__name__}: {ex} "
                                    f"(in a fresh router, after the {k} packets before it, one at a time)")
                h.close()
                return
        h.close()
        failure.isolated = ("no single packet of the batch raises in a fresh router (it depends on earlier "
                            "traffic or on batching); the seed replays the run")
        # the first few packets, cut short (the batch seed regenerates all of them)
        failure.packet = {"batch_heads": [r["hex"][:128] for r in records[:8]]}


# -- the whole run ----------------------------------------------------------------------------------------


def select_targets(pattern: str | None = None) -> list[Target]:
    targets = all_targets()
    if pattern:
        rx = re.compile(pattern)
        targets = [t for t in targets if rx.search(t.label)]
    return targets


def _job_process(conn: Any, seed: int, packets: int) -> None:
    """A worker process: run the targets the parent sends until it sends None."""
    runner = _worker_runner(seed)
    while True:
        target = conn.recv()
        if target is None:
            return
        conn.send(runner.run_target(target, packets))


_RUNNERS: dict[int, Runner] = {}


def _worker_runner(seed: int) -> Runner:
    r = _RUNNERS.get(seed)
    if r is None:
        r = _RUNNERS[seed] = Runner(seed)
    return r


def run(targets: list[Target], packets: int, seed: int, jobs: int = 1,
        on_result: Callable[[TargetResult], None] | None = None) -> list[TargetResult]:
    """Run every target; with ``jobs`` > 1, in that many forked worker processes."""
    if jobs <= 1 or len(targets) <= 1:
        runner = _worker_runner(seed)
        results = []
        for t in targets:
            r = runner.run_target(t, packets)
            if on_result is not None:
                on_result(r)
            results.append(r)
        return results
    import collections
    import multiprocessing
    from multiprocessing.connection import wait

    # compile the generator kernel once before forking, so workers inherit it
    _worker_runner(seed)
    warm = PacketPool()
    PacketGenerator(seed, bank=_RUNNERS[seed].bank).fill(warm, warm.alloc(4), 1, 1)
    ctx = multiprocessing.get_context("fork")
    by_label: dict[str, TargetResult] = {}
    # longest first keeps the workers busy to the end
    pending = collections.deque(sorted(targets, key=lambda t: -t.cost))
    busy: dict[Any, tuple[Any, Target]] = {}     # connection -> (process, its target)

    def give_work(conn: Any, proc: Any) -> None:
        if pending:
            t = pending.popleft()
            conn.send(t)
            busy[conn] = (proc, t)
        else:
            conn.send(None)
            conn.close()
            proc.join()

    def start_worker() -> None:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=_job_process, args=(theirs, seed, packets), daemon=True)
        proc.start()
        theirs.close()
        give_work(mine, proc)

    def finish(r: TargetResult) -> None:
        by_label[r.label] = r
        if on_result is not None:
            on_result(r)

    for _ in range(min(jobs, len(pending))):
        start_worker()
    while busy:
        for conn in wait(list(busy)):
            proc, t = busy.pop(conn)
            try:
                r = conn.recv()
            except (EOFError, OSError):
                # the worker died under this target (a crash in compiled code, the
                # OOM killer, a signal): that is a failure of the target
                proc.join()
                code = proc.exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                conn.close()
                finish(TargetResult(t.label, t.config, crashed=f"the worker process died ({how})"))
                if pending:
                    start_worker()
                continue
            finish(r)
            give_work(conn, proc)
    return [by_label[t.label] for t in targets]
