"""Packet queues: SimpleQueue, NotifierQueue, Queue (FullNoteQueue), QuickNoteQueue,
ThreadSafeQueue, FrontDropQueue, MixedQueue, and the RED dropper.

A queue keeps slot numbers (int32) in a growable ring, so a batch enters or
leaves with one or two numpy slice copies.  ``pull(port, max)`` hands out up to
``max`` packets as one batch.  Counters, drops and notifier transitions are the
same as if the batch had been pushed or pulled one packet at a time, which is
what Click's tests observe.

This module also holds the helpers for Click's "keyword handlers" (a write
handler that reconfigures the element with one argument changed), used by the
shaping and scheduling modules too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    join_args,
    parse_bool,
    parse_unsigned,
    split_args,
    split_words,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON, CALM, NONEXCLUSIVE
from clickos.core.notifier import Notifier
from clickos.core.rates import jiffies
from clickos.elements.standard.printing import chatter
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

EMPTY = "empty"
FULL = "full"

# Click's NotifierQueue sleeps its empty notifier only after this many failed pulls.
SLEEPINESS_TRIGGER = 9


# ---------------------------------------------------------------------------------------
# Keyword handlers
# ---------------------------------------------------------------------------------------

def _split_spec(spec: str) -> tuple[int, str]:
    """``"0 CAPACITY"`` -> (0, "CAPACITY"); ``"RATE"`` -> (-1, "RATE")."""
    if len(spec) > 2 and spec[0].isdigit() and spec[1] == " ":
        return int(spec[0]), spec[2:]
    return -1, spec


def _locate(conf: list[str], argno: int, keyword: str) -> tuple[str | None, bool]:
    """Take every ``keyword`` argument out of ``conf``; return (its value, whether the
    value is instead the positional argument ``argno``)."""
    a = Args(context=None).bind(conf)
    value = a.read(keyword, None)
    found = a.read_status
    a.strip()
    if not found and 0 <= argno < len(conf) and not _is_keyword_arg(conf[argno]):
        return conf[argno], True
    return (value if found else None), False


def _is_keyword_arg(arg: str) -> bool:
    """Whether ``arg`` has the form ``KEYWORD value`` (Click's cp_keyword with a rest)."""
    if not arg or not (arg[0].isalpha() or arg[0] == "_"):
        return False
    i = 1
    while i < len(arg) and (arg[i].isalnum() or arg[i] in "_:.?!"):
        i += 1
    j = i
    while j < len(arg) and arg[j] in " \t\n\r\f\v":
        j += 1
    return j > i and j < len(arg)


def read_keyword(element: Element, spec: str) -> str:
    """Current text of configuration argument ``spec`` ("KEY" or "N KEY"), or ""."""
    argno, keyword = _split_spec(spec)
    value, _ = _locate(split_args(element.config_string), argno, keyword)
    return value or ""


def reconfigure_keyword(element: Element, spec: str, value: str, errh: ErrorHandler) -> None:
    """Reconfigure ``element`` live with argument ``spec`` replaced by ``value``
    (Click's reconfigure_keyword_handler).  On success the element's
    configuration string is updated."""
    argno, keyword = _split_spec(spec)
    conf = split_args(element.config_string)
    _, positional = _locate(conf, argno, keyword)
    if positional:
        conf[argno] = value
    else:
        conf.append(f"{keyword} {value}")
    new_config = join_args(conf)
    element.live_reconfigure(list(conf), errh)
    element.config_string = new_config


def add_keyword_write_handler(element: Element, name: str, spec: str, flags: int = 0) -> None:
    """A write handler ``name`` that reconfigures argument ``spec`` (see reconfigure_keyword)."""
    def write(value: str, errh: ErrorHandler) -> None:
        reconfigure_keyword(element, spec, value.strip(), errh)

    element.add_write_handler(name, write, flags)


def add_keyword_read_handler(element: Element, name: str, spec: str, flags: int = 0) -> None:
    """A read handler ``name`` returning argument ``spec`` of the current configuration."""
    element.add_read_handler(name, lambda: read_keyword(element, spec), flags)


# ---------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------

class SlotRing:
    """A double-ended FIFO of slot numbers in a growable numpy ring."""

    __slots__ = ("buf", "head", "size")

    def __init__(self, hint: int = 64) -> None:
        self.buf = np.empty(max(hint, 8), np.int32)
        self.head = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _grow(self, need: int) -> None:
        n = len(self.buf)
        new = np.empty(max(2 * n, need), np.int32)
        new[: self.size] = self.to_array()
        self.buf = new
        self.head = 0

    def to_array(self) -> np.ndarray:
        """All slots, head first (a copy)."""
        n, h, cap = self.size, self.head, len(self.buf)
        if h + n <= cap:
            return self.buf[h: h + n].copy()
        return np.concatenate((self.buf[h:], self.buf[: h + n - cap]))

    def clear(self) -> None:
        self.head = 0
        self.size = 0

    def push_back(self, idx: np.ndarray) -> None:
        n = len(idx)
        if self.size + n > len(self.buf):
            self._grow(self.size + n)
        buf = self.buf
        cap = len(buf)
        t = self.head + self.size
        if t >= cap:
            t -= cap
        first = cap - t
        if n <= first:
            buf[t: t + n] = idx
        else:
            buf[t:] = idx[:first]
            buf[: n - first] = idx[first:]
        self.size += n

    def push1(self, slot: Any) -> None:
        """Append one slot (the per-packet fast path)."""
        buf = self.buf
        cap = len(buf)
        size = self.size
        if size >= cap:
            self._grow(size + 1)
            buf = self.buf
            cap = len(buf)
        t = self.head + size
        if t >= cap:
            t -= cap
        buf[t] = slot
        self.size = size + 1

    def pop1(self) -> np.ndarray:
        """Remove the head slot; returned as a one-element array."""
        h = self.head
        out = self.buf[h: h + 1].copy()
        size = self.size - 1
        self.size = size
        if not size:
            self.head = 0
        else:
            h += 1
            self.head = 0 if h == len(self.buf) else h
        return out

    def push_front1(self, slot: int) -> None:
        if self.size + 1 > len(self.buf):
            self._grow(self.size + 1)
        h = self.head - 1
        if h < 0:
            h += len(self.buf)
        self.buf[h] = slot
        self.head = h
        self.size += 1

    def pop_front(self, n: int) -> np.ndarray:
        buf = self.buf
        cap = len(buf)
        h = self.head
        if h + n <= cap:
            out = buf[h: h + n].copy()
        else:
            out = np.concatenate((buf[h:], buf[: h + n - cap]))
        h += n
        if h >= cap:
            h -= cap
        self.size -= n
        self.head = h if self.size else 0
        return out

    def pop_back(self, n: int) -> np.ndarray:
        """Remove the last ``n`` slots; returned head-first."""
        cap = len(self.buf)
        start = self.head + self.size - n
        if start >= cap:
            start -= cap
        if start + n <= cap:
            out = self.buf[start: start + n].copy()
        else:
            out = np.concatenate((self.buf[start:], self.buf[: start + n - cap]))
        self.size -= n
        if not self.size:
            self.head = 0
        return out

    def peek(self, i: int) -> int:
        j = self.head + i
        cap = len(self.buf)
        return int(self.buf[j - cap if j >= cap else j])


def transfer_slots(src: PacketPool, idx: np.ndarray, dst: PacketPool) -> np.ndarray:
    """Move packets from one pool to another (hot-swap between routers); returns new slots."""
    if src is dst or len(idx) == 0:
        return idx
    if src.slot_size > dst.slot_size:
        dst.ensure_slot_size(src.slot_size - dst.headroom - 64)
    new = dst.alloc(len(idx))
    width = min(src.slot_size, dst.slot_size)
    dst.data[new, :width] = src.data[idx, :width]
    for name in ("off", "length", "ts", "anno", "mac", "nh", "th", "ptype"):
        getattr(dst, name)[new] = getattr(src, name)[idx]
    src.release(idx)
    return new


class Storage(Element):
    """Abstract base of elements that hold packets and report their number
    (Click's Storage interface: ``size()`` and ``capacity``)."""

    register = False

    def __init__(self) -> None:
        super().__init__()
        self.capacity = 0

    def size(self) -> int:
        return 0


# ---------------------------------------------------------------------------------------
# SimpleQueue and its notifying descendants
# ---------------------------------------------------------------------------------------

class SimpleQueue(Storage):
    """SimpleQueue([CAPACITY])

    Stores packets in a first-in-first-out queue.

    Packets pushed into the input are appended; each pull on the output takes
    packets from the head.  When the queue already holds CAPACITY packets, an
    arriving packet is dropped: it leaves on output 1 if that output exists,
    and is freed otherwise.  CAPACITY defaults to 1000.  The first drop prints
    "NAME :: CLASS: overflow" on standard error.

    SimpleQueue sends no notifications; see NotifierQueue and Queue for queues
    that tell pulling tasks when packets arrive and pushing sources when room
    frees up.

    Handlers:

    - ``length`` (read): packets currently queued.
    - ``highwater_length`` (read): the most packets ever queued at once.
    - ``capacity`` (read/write): the capacity; writing it reconfigures the queue,
      keeping the oldest packets that fit and freeing the rest.
    - ``drops`` (read): packets dropped so far.
    - ``reset_counts`` (write): zero ``drops`` and set ``highwater_length`` to
      the current length.
    - ``reset`` (write): empty the queue (packets go to output 1, if present).

    Example: ``FromDevice(eth0) -> SimpleQueue(200) -> ToDevice(eth1)``
    """

    port_count = "1/1-2"
    processing = "h/lh"
    # A batch enqueued at once is the same as its packets enqueued one by one only
    # when nothing else observes the queue in between: true for the silent
    # SimpleQueue, not for queues whose notifiers wake other tasks.
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.capacity = 1000
        self.drops = 0
        self.highwater_length = 0
        self.q = SlotRing(8)
        self._pool: PacketPool | None = None

    # -- casting -------------------------------------------------------------------
    def cast(self, name: str) -> Any:
        if name in ("Storage", "SimpleQueue", "Queue"):
            return self
        return super().cast(name)

    # -- configuration -------------------------------------------------------------
    def _parse_capacity(self, conf: list[str], errh: ErrorHandler) -> int:
        a = Args(conf, self)
        cap = a.read_p("CAPACITY", parse_unsigned, 1000)
        a.complete()
        if cap > 0x7FFFFFFF:
            cap -= 1 << 32  # Click stores the capacity in an int
        return cap

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.capacity = self._parse_capacity(conf, errh)

    def initialize(self, errh: ErrorHandler) -> None:
        self._pool = self.router.pool
        self.q = SlotRing(min(max(self.capacity, 8), 1024))
        self.drops = 0
        self.highwater_length = 0

    def cleanup(self, stage: int) -> None:
        if self._pool is not None and len(self.q):
            self._pool.release(self.q.to_array())
        self.q.clear()

    def can_live_reconfigure(self) -> bool:
        return True

    def _truncate_keep_head(self, new_capacity: int) -> None:
        """Keep the oldest ``new_capacity`` packets and free the rest."""
        extra = len(self.q) - max(new_capacity, 0)
        if extra > 0:
            dead = self.q.pop_back(extra)
            if self._pool is not None:
                self._pool.release(dead)

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        # Only the capacity is reconfigured; subclass configure() is not rerun.
        new_capacity = SimpleQueue._parse_capacity(self, conf, errh)
        if new_capacity == self.capacity or self._pool is None:
            self.capacity = new_capacity
            return
        self._truncate_keep_head(new_capacity)
        self.capacity = new_capacity

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        q = old.cast("SimpleQueue") if old is not None else None
        if not isinstance(q, SimpleQueue):
            return
        if len(self.q):
            errh.error("already have packets enqueued, can't take state")
            return
        slots = q.q.to_array()
        q.q.clear()
        oldlen = len(slots)
        keep, lost = self._take_state_split(slots)
        if len(lost):
            errh.warning(f"some packets lost (old length {oldlen}, new capacity {self.capacity})")
            if q._pool is not None:
                q._pool.release(lost)
        if len(keep):
            if q._pool is not None and self._pool is not None:
                keep = transfer_slots(q._pool, keep, self._pool)
            self.q.push_back(keep)
        self.highwater_length = len(self.q)
        self._after_take_state()

    def _take_state_split(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cap = max(self.capacity, 0)
        return slots[:cap], slots[cap:]

    def _after_take_state(self) -> None:
        pass

    # -- Storage -------------------------------------------------------------------
    def size(self) -> int:
        return self.q.size

    @property
    def length(self) -> int:
        return self.q.size

    def packet_slots(self) -> np.ndarray:
        """The queued packets' slot numbers, head first (a copy; for inspection)."""
        return self.q.to_array()

    # -- packets -------------------------------------------------------------------
    def _overflow(self, rest: np.ndarray) -> None:
        if self.drops == 0 and self.capacity > 0:
            chatter(f"{self.declaration()}: overflow")
        self.drops += len(rest)
        self.checked_output_push(1, PacketBatch(self.router.pool, rest))

    def _enqueue(self, idx: np.ndarray) -> int:
        """Append as many of ``idx`` as fit; return how many did."""
        q = self.q
        room = self.capacity - q.size
        n = len(idx)
        k = n if n <= room else max(room, 0)
        if k:
            q.push_back(idx if k == n else idx[:k])
            if q.size > self.highwater_length:
                self.highwater_length = q.size
        return k

    def push(self, port: int, batch: PacketBatch) -> None:
        idx = batch.idx
        k = self._enqueue(idx)
        if k < len(idx):
            self._overflow(idx[k:])

    def deq(self, max: int = 1) -> PacketBatch | None:
        """Take up to ``max`` packets from the head, with no notification."""
        q = self.q
        size = q.size
        if not size:
            return None
        if max == 1 or size == 1:
            return PacketBatch(self._pool, q.pop1())  # type: ignore[arg-type]
        return PacketBatch(self._pool, q.pop_front(max if max < size else size))  # type: ignore[arg-type]

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        return self.deq(max)

    def reset(self) -> None:
        """Empty the queue through ``pull`` (so notifiers see it); packets go to output 1."""
        while True:
            b = self.pull(0, self.q.size or 1)
            if b is None:
                break
            self.checked_output_push(1, b)

    # -- handlers ------------------------------------------------------------------
    def add_handlers(self) -> None:
        self.add_read_handler("length", lambda: self.q.size)
        self.add_read_handler("highwater_length", lambda: self.highwater_length)
        self.add_read_handler("capacity", lambda: self.capacity, CALM)
        self.add_read_handler("drops", lambda: self.drops)
        add_keyword_write_handler(self, "capacity", "0 CAPACITY")

        def reset_counts(value: str, errh: ErrorHandler) -> None:
            self.drops = 0
            self.highwater_length = self.q.size

        def reset(value: str, errh: ErrorHandler) -> None:
            self.reset()

        self.add_write_handler("reset_counts", reset_counts, BUTTON | NONEXCLUSIVE)
        self.add_write_handler("reset", reset, BUTTON)


class NotifierQueue(SimpleQueue):
    """NotifierQueue([CAPACITY])

    A FIFO queue that tells pullers when it has packets.

    Behaves like SimpleQueue, and additionally provides an "empty" notifier on
    its output: the notifier turns on (waking listening pull tasks, such as an
    Unqueue or a pull-context Discard) when a packet arrives, and turns off some
    time after the queue goes empty -- after several consecutive pulls find
    nothing -- so that queues hovering around one or two packets do not make
    their pullers sleep and wake constantly.

    CAPACITY defaults to 1000.  Handlers are SimpleQueue's: ``length``,
    ``highwater_length``, ``capacity`` (read/write), ``drops``,
    ``reset_counts``, ``reset``.

    Example: ``InfiniteSource -> NotifierQueue(5) -> Unqueue -> Discard``
    """

    batch_transparent = True  # a push of k packets leaves the queue as k single pushes would

    def __init__(self) -> None:
        super().__init__()
        self.sleepiness = 0
        self.empty_note = Notifier()

    def cast(self, name: str) -> Any:
        if name == "NotifierQueue":
            return self
        return super().cast(name)

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        return self.empty_note if kind == EMPTY else None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.empty_note.initialize(EMPTY, self.router)
        super().configure(conf, errh)

    def push(self, port: int, batch: PacketBatch) -> None:
        idx = batch.idx
        k = self._enqueue(idx)
        if k:
            note = self.empty_note
            if not note.signal.active():
                note.set_active(True)
        if k < len(idx):
            self._overflow(idx[k:])

    def _pull_failed(self) -> None:
        if self.sleepiness >= SLEEPINESS_TRIGGER:
            self.empty_note.sleep()
        else:
            self.sleepiness += 1

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        b = self.deq(max)
        if b is not None:
            self.sleepiness = 0
        else:
            self._pull_failed()
        return b

    def _after_take_state(self) -> None:
        if len(self.q):
            self.empty_note.set_active(True)


class Queue(NotifierQueue):
    """Queue([CAPACITY])

    A FIFO queue that notifies both pullers and pushers.

    Stores packets first in, first out, dropping arriving packets when it holds
    CAPACITY packets already (default 1000).  Like NotifierQueue it provides an
    "empty" notifier on its output, turned off some pulls after the queue runs
    dry.  It also provides a "full" notifier on its input: off while the queue
    is full, on again as soon as a pull makes room, so that sources upstream
    (InfiniteSource, RatedSource ...) sleep instead of overflowing it.

    The old name FullNoteQueue is accepted too.

    Handlers:

    - ``length``, ``highwater_length``, ``drops`` (read).
    - ``capacity`` (read/write).  Raising it above the current length wakes
      the sources waiting on the full notifier.
    - ``reset_counts`` (write): zero ``drops``, restart ``highwater_length``.
    - ``reset`` (write): empty the queue.

    Example::

        InfiniteSource -> q :: Queue(100) -> Unqueue -> Discard;
    """

    batch_transparent = True  # a push of k packets leaves the queue as k single pushes would

    def __init__(self) -> None:
        super().__init__()
        self.full_note = Notifier()

    def cast(self, name: str) -> Any:
        if name == "FullNoteQueue":
            return self
        return super().cast(name)

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        if kind == FULL:
            return self.full_note
        return self.empty_note if kind == EMPTY else None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.full_note.initialize(FULL, self.router)
        self.full_note.signal.set_active(True)
        super().configure(conf, errh)

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        super().live_reconfigure(conf, errh)
        if self.q.size < self.capacity and self._pool is not None:
            self.full_note.set_active(True)

    def push(self, port: int, batch: PacketBatch) -> None:
        idx = batch.idx
        q = self.q
        if len(idx) == 1 and q.size < self.capacity:
            q.push1(idx[0])
            size = q.size
            if size > self.highwater_length:
                self.highwater_length = size
            k = 1
        else:
            k = self._enqueue(idx)
        if k:
            note = self.empty_note
            if not note.signal.active():
                note.set_active(True)
            if q.size == self.capacity:
                self.full_note.sleep()
        if k < len(idx):
            self._overflow(idx[k:])

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        b = self.deq(max)
        if b is not None:
            self.sleepiness = 0
            note = self.full_note
            if not note.signal.active():
                note.set_active(True)
        else:
            self._pull_failed()
        return b

    def _after_take_state(self) -> None:
        super()._after_take_state()
        if self.q.size >= self.capacity:
            self.full_note.sleep()


class FullNoteQueue(Queue):
    """FullNoteQueue([CAPACITY])

    The old name of Queue: a FIFO queue with "empty" and "full" notifiers.
    Elements declared with this name report their class as Queue.

    Example: ``InfiniteSource -> FullNoteQueue(10) -> Unqueue -> Discard``
    """

    def __init__(self) -> None:
        super().__init__()
        # Click exports this class under a second name; the element itself is a Queue.
        self.class_name = lambda: "Queue"  # type: ignore[method-assign]


class ThreadSafeQueue(Queue):
    """ThreadSafeQueue([CAPACITY])

    A FIFO queue safe for several pushing and pulling threads at once.

    This implementation runs every router on one thread, so ThreadSafeQueue is
    exactly Queue: same notifiers, arguments and handlers (``length``,
    ``highwater_length``, ``capacity``, ``drops``, ``reset_counts``, ``reset``).

    Example: ``PollDevice(eth0) -> ThreadSafeQueue -> ToDevice(eth1)``
    """

    def cast(self, name: str) -> Any:
        if name == "ThreadSafeQueue":
            return self
        return super().cast(name)


class QuickNoteQueue(Queue):
    """QuickNoteQueue([CAPACITY])

    A FIFO queue whose empty notification is immediate.

    Like Queue (empty and full notifiers, same handlers and CAPACITY default
    of 1000), except that the "empty" notifier turns off the moment a pull
    empties the queue rather than after several fruitless pulls.  Pull tasks
    downstream therefore sleep sooner, at the price of more sleeping and
    waking when the queue hovers near empty.

    Example: ``src -> QuickNoteQueue(64) -> Unqueue -> sink``
    """

    def cast(self, name: str) -> Any:
        if name == "QuickNoteQueue":
            return self
        return super().cast(name)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        b = self.deq(max)
        if b is not None:
            note = self.full_note
            if not note.signal.active():
                note.set_active(True)
        if not self.q.size:
            self.empty_note.sleep()
        return b


class FrontDropQueue(NotifierQueue):
    """FrontDropQueue([CAPACITY])

    A FIFO queue that drops from the head when full.

    Stores packets first in, first out.  When a packet arrives at a queue that
    already holds CAPACITY packets (default 1000), the *oldest* packet is
    dropped to make room -- sent out output 1 if it exists, freed otherwise --
    and the new one is appended.  Provides an "empty" notifier like
    NotifierQueue.

    Handlers: ``length``, ``highwater_length``, ``drops`` (read); ``capacity``
    (read/write; shrinking keeps the newest packets); ``reset_counts``,
    ``reset`` (write).

    Example: ``src -> FrontDropQueue(20) -> Unqueue -> sink``
    """

    def cast(self, name: str) -> Any:
        if name == "FrontDropQueue":
            return self
        return super().cast(name)

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        new_capacity = SimpleQueue._parse_capacity(self, conf, errh)
        if new_capacity == self.capacity or self._pool is None:
            self.capacity = new_capacity
            return
        extra = len(self.q) - max(new_capacity, 0)
        if extra > 0:
            self._pool.release(self.q.pop_front(extra))
        self.capacity = new_capacity

    def _take_state_split(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cap = max(self.capacity, 0)
        cut = max(len(slots) - cap, 0)
        return slots[cut:], slots[:cut]

    def push(self, port: int, batch: PacketBatch) -> None:
        idx = batch.idx
        n = len(idx)
        q = self.q
        cap = self.capacity
        if cap <= 0:
            self._overflow(idx)
            return
        before = q.size
        over = before + n - cap
        if over > 0:
            if self.drops == 0:
                chatter(f"{self.declaration()}: overflow")
            self.drops += over
            from_q = min(over, before)
            dead = [q.pop_front(from_q)] if from_q else []
            if over > from_q:
                dead.append(idx[: over - from_q])
                idx = idx[over - from_q:]
            q.push_back(idx)
            self.checked_output_push(1, PacketBatch(self.router.pool, np.concatenate(dead)
                                                    if len(dead) > 1 else dead[0]))
        else:
            q.push_back(idx)
        if q.size > self.highwater_length:
            self.highwater_length = q.size
        if (before == 0 or cap == 1) and not self.empty_note.signal.active():
            self.empty_note.set_active(True)


class MixedQueue(NotifierQueue):
    """MixedQueue([CAPACITY])

    A queue that is FIFO on input 0 and LIFO on input 1.

    Packets arriving on input 0 join the tail; packets arriving on input 1 go
    to the head, so they are the next to leave.  The queue holds at most
    CAPACITY packets (default 1000).  When it is full, a packet arriving on
    input 0 is dropped, while a packet arriving on input 1 pushes the packet
    at the tail out to make room.  Dropped packets leave on output 1 if it
    exists.  Provides an "empty" notifier like NotifierQueue.

    Handlers: ``length``, ``highwater_length``, ``drops`` (read);
    ``capacity`` (read/write); ``reset_counts``, ``reset`` (write).

    Example: after pushes of A on input 0, B on input 0, C on input 1,
    D on input 0 and E on input 1, the queue holds E C A B D, head first.
    """

    port_count = "2/1-2"

    def cast(self, name: str) -> Any:
        if name == "MixedQueue":
            return self
        return super().cast(name)

    def push(self, port: int, batch: PacketBatch) -> None:
        if port == 0:
            idx = batch.idx
            before = self.q.size
            k = self._enqueue(idx)
            if k < len(idx):
                self._overflow(idx[k:])
            if k and (before == 0 or self.capacity == 1) and not self.empty_note.signal.active():
                self.empty_note.set_active(True)
            return
        pool = self.router.pool
        q = self.q
        for slot in batch.idx.tolist():
            old = None
            if self.capacity <= 0:
                self._overflow(np.array([slot], np.int32))
                continue
            if q.size >= self.capacity:
                if self.drops == 0:
                    chatter(f"{self.declaration()}: overflow")
                self.drops += 1
                old = q.pop_back(1)
            q.push_front1(slot)
            s = q.size
            if s > self.highwater_length:
                self.highwater_length = s
            if s == 1 and not self.empty_note.signal.active():
                self.empty_note.set_active(True)
            if old is not None:
                self.checked_output_push(1, PacketBatch(pool, old))


# ---------------------------------------------------------------------------------------
# RED
# ---------------------------------------------------------------------------------------

QUEUE_SCALE = 10


def _unparse_real2(value: int, frac_bits: int) -> str:
    from clickos.core.ewma import unparse_real2

    return unparse_real2(value, frac_bits)


class _StabilityEWMA:
    """Click's DirectEWMAX with a runtime stability shift and QUEUE_SCALE fraction bits
    (64-bit unsigned average)."""

    __slots__ = ("avg", "stability")

    M64 = (1 << 64) - 1

    def __init__(self, stability: int = 4) -> None:
        self.avg = 0
        self.stability = stability

    def _comp(self) -> int:
        return (1 << (self.stability - 1)) if self.stability > 0 else 0

    def _step(self, xs: int) -> None:
        d = (xs - self.avg) & self.M64
        if d >= 1 << 63:
            d -= 1 << 64
        self.avg = (self.avg + (d >> self.stability)) & self.M64

    def update(self, x: int) -> None:
        self._step((x << QUEUE_SCALE) + self._comp())

    def update_n(self, x: int, n: int) -> None:
        xs = x << QUEUE_SCALE
        if n >= 100:
            self.avg = xs
            return
        xs += self._comp()
        for _ in range(n):
            self._step(xs)

    def unscaled(self) -> int:
        return (self.avg + ((1 << QUEUE_SCALE) >> 1)) >> QUEUE_SCALE

    def unparse(self) -> str:
        return _unparse_real2(self.avg, QUEUE_SCALE)


def _parse_prob16(text: str) -> int:
    from clickos.core.confparse import parse_unsigned_fixed_point

    return parse_unsigned_fixed_point(text, 16)


class RED(Element):
    """RED(MIN_THRESH, MAX_THRESH, MAX_P [, KEYWORDS])

    Drops packets by Random Early Detection.

    RED watches one or more queues (Storage elements) and keeps a moving
    average of their total length.  While the average is at most MIN_THRESH no
    packet is dropped; between MIN_THRESH and MAX_THRESH packets are dropped
    with a probability rising linearly from 0 to MAX_P; above that, with the
    GENTLE variant (the default), the probability rises on to 1 at twice
    MAX_THRESH, and without it every packet is dropped.  Dropped packets leave
    on output 1 if it exists and are freed otherwise.

    Without QUEUES, RED finds its queues by following the flow: the nearest
    queues downstream when RED is a push element, upstream when it is a pull
    element.

    Keyword arguments:

    - MIN_THRESH (integer), MAX_THRESH (integer, at most 65535, and at least
      MIN_THRESH), MAX_P (real between 0 and 1).
    - QUEUES (space-separated element names): the queues to watch.
    - STABILITY (integer 0-16): the average's weight is 2^-STABILITY; 0 uses
      the instantaneous length.  Default 4.
    - GENTLE (boolean): default true.

    Handlers: ``min_thresh``, ``max_thresh``, ``max_p`` (read/write),
    ``drops``, ``queues``, ``avg_queue_size``, ``stats`` (read).

    Example: ``... -> RED(5, 50, 0.02) -> Queue(200) -> ...``
    """

    port_count = "1/1-2"
    processing = "a/ah"

    def __init__(self) -> None:
        super().__init__()
        self.min_thresh = self.max_thresh = self.kill_thresh = 0
        self.max_p = 0
        self.gentle = True
        self.avg = _StabilityEWMA(4)
        self.C1 = 0
        self.C2 = 1
        self.G1 = self.G2 = 0
        self.count = -1
        self.random_value = 0
        self.last_jiffies = 0
        self.drops = 0
        self.queue_elements: list[Element] = []
        self.queues: list[Any] = []

    def can_live_reconfigure(self) -> bool:
        return True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        min_thresh = a.read_mp("MIN_THRESH", parse_unsigned)
        max_thresh = a.read_mp("MAX_THRESH", parse_unsigned)
        max_p = a.read_mp("MAX_P", _parse_prob16)
        queues = a.read("QUEUES", None)
        stability = a.read("STABILITY", parse_unsigned, 4)
        gentle = a.read("GENTLE", parse_bool, True)
        a.complete()
        if max_thresh > 0xFFFF:
            raise ConfigError(f"MAX_THRESH must be <= {0xFFFF}")
        if min_thresh > max_thresh:
            raise ConfigError("MIN_THRESH must be <= MAX_THRESH")
        if max_p > 0x10000:
            raise ConfigError("MAX_P must be between 0 and 1")
        if stability > 16:
            raise ConfigError("STABILITY must be between 0 and 16")
        if queues and not self.queue_elements:
            names = split_words(queues)
            found = []
            for n in names:
                e = self.router.find(n, self)
                if e is None:
                    errh.error(f"no element named '{n}'")
                else:
                    found.append(e)
            if len(found) != len(names):
                raise ConfigError("bad QUEUES")
            self.queue_elements = found
        self.min_thresh, self.max_thresh = min_thresh, max_thresh
        self.kill_thresh = max_thresh * 2 if gentle and max_p != 0x10000 else max_thresh
        self.max_p = max_p
        self.avg.stability = stability
        self.gentle = gentle
        if min_thresh >= max_thresh:
            self.C1, self.C2 = 0, 1
        else:
            self.C1 = max_p // (max_thresh - min_thresh)
            self.C2 = (max_p * min_thresh) // (max_thresh - min_thresh)
        self.G1 = (0x10000 - max_p) // max_thresh if max_thresh else 0
        self.G2 = 0x10000 - 2 * max_p

    def initialize(self, errh: ErrorHandler) -> None:
        if not self.queue_elements:
            found: list[Element] = []
            forward = self.output_is_push(0)

            def visit(e: Element, isoutput: bool, port: int) -> bool:
                if e.cast("Storage") is not None:
                    if e not in found:
                        found.append(e)
                    return False
                return True

            self.router.visit(self, forward, 0, visit)
            self.queue_elements = found
        if not self.queue_elements:
            raise ConfigError("no nearby Queues")
        bad = [e for e in self.queue_elements if e.cast("Storage") is None]
        for e in bad:
            errh.error(f"'{e.name}' is not a Storage element")
        if bad:
            raise ConfigError("bad QUEUES")
        self.queues = [e.cast("Storage") for e in self.queue_elements]
        self.avg.avg = 0
        self.drops = 0
        self.count = -1
        self.last_jiffies = 0

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        if isinstance(old, RED):
            self.avg.avg = old.avg.avg

    def queue_size(self) -> int:
        return sum(q.size() for q in self.queues)

    def should_drop(self) -> bool:
        s = self.queue_size()
        avgq = self.avg
        if avgq.stability == 0:
            avg = s
        elif s:
            avgq.update(s)
            self.last_jiffies = 0
            avg = avgq.unscaled()
        else:
            j = (jiffies(self.now()) // (1000 // 50)) & 0xFFFFFFFF
            avgq.update_n(0, ((j - self.last_jiffies) & 0xFFFFFFFF) if self.last_jiffies else 1)
            self.last_jiffies = j
            avg = avgq.unscaled()
        if avg <= self.min_thresh:
            self.count = -1
            return False
        if avg > self.kill_thresh:
            self.count = -1
            return True
        if avg <= self.max_thresh:
            p_b = ((self.C1 * avgq.avg) >> QUEUE_SCALE) - self.C2
        else:
            p_b = ((self.G1 * avgq.avg) >> QUEUE_SCALE) - self.G2
        self.count += 1
        if self.count > 0 and p_b > 0 and self.count > self.random_value // p_b:
            self.count = 0
            self.random_value = (random.getrandbits(31) >> 5) & 0xFFFF
            return True
        if self.count == 0:
            self.random_value = (random.getrandbits(31) >> 5) & 0xFFFF
        return False

    def _drop(self, slots: list[int]) -> None:
        self.drops += len(slots)
        self.checked_output_push(1, PacketBatch(self.router.pool, np.array(slots, np.int32)))

    def push(self, port: int, batch: PacketBatch) -> None:
        dead: list[int] = []
        # The decision depends on the queue length, which grows as packets are
        # forwarded, so forward each packet before deciding the next.
        if len(batch) == 1:
            if self.should_drop():
                self._drop(batch.idx.tolist())
            else:
                self.outputs[0].push(batch)
            return
        for slot in batch.idx.tolist():
            if self.should_drop():
                dead.append(slot)
            else:
                self.outputs[0].push(PacketBatch(batch.pool, np.array([slot], np.int32)))
        if dead:
            self._drop(dead)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        got: list[int] = []
        while len(got) < max:
            b = self.inputs[0].pull(1)
            if b is None:
                break
            if self.should_drop():
                self._drop(b.idx.tolist())
            else:
                got.append(int(b.idx[0]))
        return PacketBatch(self.router.pool, np.array(got, np.int32)) if got else None

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)
        for name, spec in (("min_thresh", "0 MIN_THRESH"), ("max_thresh", "1 MAX_THRESH"),
                           ("max_p", "2 MAX_P")):
            add_keyword_read_handler(self, name, spec)
            add_keyword_write_handler(self, name, spec)
        self.add_read_handler("avg_queue_size", lambda: self.avg.unparse())
        self.add_read_handler("stats", lambda: (
            f"{self.queue_size()} current queue\n{self.avg.unparse()} avg queue\n{self.drops} drops\n"))
        self.add_read_handler("queues", lambda: "".join(e.name + "\n" for e in self.queue_elements))

        def config() -> str:
            s = (f"{self.min_thresh}, {self.max_thresh}, {_unparse_real2(self.max_p, 16)}, QUEUES"
                 + "".join(" " + e.name for e in self.queue_elements)
                 + f", STABILITY {self.avg.stability}")
            return s + (", GENTLE false" if not self.gentle else "")

        self.add_read_handler("config", config)  # Click clears CALM here
