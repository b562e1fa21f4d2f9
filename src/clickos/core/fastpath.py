"""Fused push paths: a run of simple elements executed as one generated kernel.

An element takes part by returning its step from ``fast_step()`` (a
:class:`clickos.packet.fusegen.Step`, or None when its configuration has no
common case worth fusing).  At router initialization, after every element is
configured and before any is initialized, :func:`build` finds each maximal run
``E1 -> E2 -> ... -> Ek`` (k >= 2) of such elements joined output 0 to input
0, all push, and points the output ports feeding ``E1`` at a :class:`FastPath`.

A fast path starts out handing batches to ``E1.push``: the ordinary path.
Once it has carried ``HOT_BATCHES`` batches of at least ``HOT_SIZE`` packets
it generates its kernel (:mod:`clickos.packet.fusegen`) and has a child
process compile it into numba's on-disk cache; meanwhile forwarding goes on
as before.  When the kernel is ready, each batch takes one call: packets that
pass every step leave ``Ek``'s output 0; a packet a step cannot handle the
common way is *punted* to that element's own ``push``, untouched by it, and
travels the ordinary way from there (error outputs, counters, messages).
Packets are handed on in runs of the same fate, in packet order, so packets
that meet again downstream keep their order.

Nothing else changes: elements, ports and handlers are all still there, and a
packet entering an element in the middle of a run takes the ordinary path.  A
handler write to a fused element (``Handler.call_write`` calls
:func:`element_changed`) sends its paths back to the ordinary path and to
warming up again with the new configuration.

``CLICKOS_FASTPATH=0`` disables fusion (``clickos bench middleboxes --profile``
does, to time elements one by one).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from clickos.packet.batch import PacketBatch

if TYPE_CHECKING:
    from clickos.core.element import Element
    from clickos.core.router import Router

HOT_BATCHES = 64
HOT_SIZE = 32
MAX_STEPS = 16


def enabled() -> bool:
    return os.environ.get("CLICKOS_FASTPATH", "1") != "0"


def _fusable(e: Element) -> bool:
    if not e.inputs or not e.outputs:
        return False
    if not e.inputs[0].is_push or not e.outputs[0].is_push or e.outputs[0].element is None:
        return False
    return e.fast_step() is not None


def build(router: Router) -> list[FastPath]:
    """Find the router's fusable runs and route their feeding ports through
    fast paths; returns them (also kept in ``router.attachments["fastpaths"]``)."""
    if not enabled():
        return []
    elements = router.elements
    ok = {e.eindex for e in elements if _fusable(e)}
    if not ok:
        return []

    def successor(e: Element) -> Element | None:
        port = e.outputs[0]
        nxt = port.element
        if nxt is None or port.peer_port != 0 or nxt.eindex not in ok:
            return None
        return nxt

    paths: list[FastPath] = []
    for e in elements:
        if e.eindex not in ok:
            continue
        # the ports feeding e that are not a fusable element's output 0 (those
        # packets are already inside a run through e)
        feeders = []
        for fe, fp in router._conn_in.get((e.eindex, 0), []):
            up = elements[fe]
            if not (fp == 0 and up.eindex in ok and successor(up) is e):
                feeders.append(up.outputs[fp])
        if not feeders:
            continue
        run = [e]
        nxt = successor(e)
        while nxt is not None and nxt not in run and len(run) < MAX_STEPS:
            run.append(nxt)
            nxt = successor(nxt)
        if len(run) < 2:
            continue
        path = FastPath(run)
        for port in feeders:
            port.push = path.push
        paths.append(path)
    router.attachments["fastpaths"] = paths
    return paths


def element_changed(e: Element) -> None:
    """Back to the ordinary path (and warming up) for every fast path through ``e``."""
    for path in getattr(e, "_fast_paths", ()):
        path.reset()


def fast_paths(router: Router) -> list[FastPath]:
    """The router's fast paths (for tests and diagnostics)."""
    return list(router.attachments.get("fastpaths", []))


class FastPath:
    """One fused run of elements; ``push`` is what its feeding ports call."""

    def __init__(self, elements: list[Element]) -> None:
        self.elements = elements
        self._head = elements[0]
        self._tail = elements[-1].outputs[0]
        self._verdict = np.zeros(256, np.int32)
        self.kernel: Any = None
        self._arrays: tuple[np.ndarray, ...] = ()
        self._compile: Any = None
        self._hot = 0
        self.failed = False
        for e in elements:
            if not hasattr(e, "_fast_paths"):
                e._fast_paths = []  # type: ignore[attr-defined]
            e._fast_paths.append(self)  # type: ignore[attr-defined]

    def describe(self) -> str:
        return " -> ".join(e.name for e in self.elements)

    # -- getting the kernel ----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the kernel (the configuration changed); warm up again."""
        if self._compile is not None:
            self._compile.cancel()
        self._compile = None
        self.kernel = None
        self._hot = 0
        self.failed = False

    def _write(self) -> tuple[str, str] | None:
        """Generate the kernel's module (arrays into ``self._arrays``); returns its
        (file, module name), or None if an element has no step any more."""
        from clickos.packet import codegen, fusegen

        steps = []
        for e in self.elements:
            step = e.fast_step()
            if step is None:
                return None
            steps.append(step)
        source, _ = fusegen.kernel_source(steps)
        self._arrays = tuple(a for st in steps for a in st.arrays)
        return codegen.write_source("fastpath", "fp", source)

    def _sample_args(self, pool: Any) -> tuple[Any, ...]:
        idx = np.zeros(0, np.int32)
        return (pool.data, pool.off, pool.length, pool.mac, pool.nh, pool.th, pool.anno, pool.ptype, idx,
                self._verdict) + self._arrays

    def _start_compile(self, pool: Any) -> None:
        from clickos.packet import codegen

        made = self._write()
        if made is None:
            self.failed = True
            return
        self._compile = codegen.BackgroundCompile(*made, "fused", self._sample_args(pool))

    def compile_now(self, pool: Any) -> bool:
        """Compile (or load) the kernel in this process and use it; for tests and
        tools that want the fused kernel at once."""
        from clickos.packet import codegen

        made = self._write()
        if made is None:
            return False
        fn = codegen.import_file(*made).fused
        fn(*self._sample_args(pool))
        self.kernel = fn
        return True

    # -- packets ------------------------------------------------------------------------------------
    def push(self, batch: PacketBatch) -> None:
        kernel = self.kernel
        idx = batch.idx
        if kernel is None or idx.dtype != np.int32:
            if not self.failed and kernel is None:
                self._warm(batch)
            self._head.push(0, batch)
            return
        n = len(idx)
        v = self._verdict
        if len(v) < n:
            v = self._verdict = np.zeros(n, np.int32)
        pool = batch.pool
        if kernel(pool.data, pool.off, pool.length, pool.mac, pool.nh, pool.th, pool.anno, pool.ptype, idx, v,
                  *self._arrays) == 0:
            self._tail.push(batch)
            return
        # Runs of packets with the same fate, in packet order, so packets that
        # meet again downstream keep their order (a private copy of the verdicts:
        # pushing may come back into this path).
        v = v[:n].copy()
        elements = self.elements
        nsteps = len(elements)
        cuts = np.flatnonzero(v[1:] != v[:-1]) + 1
        start = 0
        for end in cuts.tolist() + [n]:
            j = int(v[start])
            part = PacketBatch(pool, idx[start:end])
            if j < nsteps:
                elements[j].push(0, part)
            else:
                self._tail.push(part)
            start = end

    def _warm(self, batch: PacketBatch) -> None:
        if self._compile is not None:
            fn = self._compile.result()
            if fn is None:
                return
            self._compile = None
            if fn is False:
                self.failed = True
                return
            self.kernel = fn
            return
        if len(batch.idx) >= HOT_SIZE:
            self._hot += 1
            if self._hot >= HOT_BATCHES:
                self._start_compile(batch.pool)
