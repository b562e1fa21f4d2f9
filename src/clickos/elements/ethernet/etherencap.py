"""Ethernet framing elements: EtherEncap, EtherRewrite, EtherMirror, the 802.1Q
VLAN elements (EtherVLANEncap, VLANEncap, VLANDecap, SetVLANAnno,
StripEtherVLANHeader), HostEtherFilter and MarkMACHeader."""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    bounded_int,
    parse_bool,
    parse_ether_address,
    parse_int,
    parse_uint16,
    parse_unsigned,
    parse_word,
    unparse_ether,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM, DEPRECATED
from clickos.elements.ip.common import (
    VLAN_TCI_ANNO,
    add_ether_handler,
    add_int_handler,
    add_keyword_handlers,
    compute_split_ok,
    ensure_headroom,
    reconfigure_keyword,
    split_push,
)
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

ETHERTYPE_8021Q = 0x8100


def _vlan_tci(pool: PacketPool, slot: int) -> int:
    a = pool.anno
    return (int(a[slot, VLAN_TCI_ANNO]) << 8) | int(a[slot, VLAN_TCI_ANNO + 1])


def _set_vlan_tci(pool: PacketPool, slot: int, tci: int) -> None:
    pool.anno[slot, VLAN_TCI_ANNO] = (tci >> 8) & 0xFF
    pool.anno[slot, VLAN_TCI_ANNO + 1] = tci & 0xFF


class _LiveReconfigure(Element):
    """Base for elements whose ``configure`` may run again while the router runs."""

    register = False

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)


class EtherEncap(_LiveReconfigure):
    """EtherEncap(ETHERTYPE, SRC, DST)

    Prepends an Ethernet header to every packet.

    The new header carries source address SRC, destination address DST and the
    16-bit type ETHERTYPE (given as a number in host order, such as 0x0800 for
    IP).  It becomes the packet's MAC header, and the network header annotation
    points just past it.  For IP packets, ARPQuerier is usually the better choice,
    since it finds the destination address itself.

    Handlers: ``src``, ``dst`` and ``ethertype`` (read/write) return or change the
    corresponding arguments; ``etht`` is a deprecated alias of ``ethertype``.

    Example: ``EtherEncap(0x0800, 1:1:1:1:1:1, 2:2:2:2:2:2)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.ethertype = 0
        self.src = b"\0" * 6
        self.dst = b"\0" * 6
        self._hdr = np.zeros(14, np.uint8)

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        ethertype = a.read_mp("ETHERTYPE", parse_uint16)
        src = a.read_mp("SRC", parse_ether_address)
        dst = a.read_mp("DST", parse_ether_address)
        a.complete()
        self.ethertype, self.src, self.dst = ethertype, src, dst
        self._rebuild()

    def _rebuild(self) -> None:
        self._hdr = np.frombuffer(self.dst + self.src + self.ethertype.to_bytes(2, "big"), np.uint8).copy()

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.push_header

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        ensure_headroom(pool, batch.idx, 14)
        self._k(pool.data, pool.off, pool.length, pool.mac, pool.nh, batch.idx, self._hdr, 14)
        return batch

    def add_handlers(self) -> None:
        self.add_read_handler("src", lambda: unparse_ether(self.src))
        self.add_write_handler("src", lambda v, e: reconfigure_keyword(self, "1 SRC", v, e))
        self.add_read_handler("dst", lambda: unparse_ether(self.dst))
        self.add_write_handler("dst", lambda v, e: reconfigure_keyword(self, "2 DST", v, e))
        self.add_read_handler("ethertype", lambda: self.ethertype)
        self.add_write_handler("ethertype", lambda v, e: reconfigure_keyword(self, "0 ETHERTYPE", v, e))
        self.add_read_handler("etht", lambda: self.ethertype, DEPRECATED)
        self.add_write_handler("etht", lambda v, e: reconfigure_keyword(self, "0 ETHERTYPE", v, e))


class EtherRewrite(_LiveReconfigure):
    """EtherRewrite(SRC, DST)

    Overwrites the source and destination Ethernet addresses.

    The 12 address bytes at the packet's MAC header (or at the start of the
    data, if no MAC header is marked) are replaced by DST and SRC; the Ethernet
    type is left alone.  Useful where a link has a single possible next hop, as
    on a transparent firewall.

    Handlers: ``src`` and ``dst`` (read/write).

    Example: ``EtherRewrite(1:1:1:1:1:1, 2:2:2:2:2:2)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.src = b"\0" * 6
        self.dst = b"\0" * 6

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        src = a.read_mp("SRC", parse_ether_address)
        dst = a.read_mp("DST", parse_ether_address)
        a.complete()
        self.src, self.dst = src, dst
        # built once per configuration (the src/dst handlers reconfigure), not per batch
        self._hdr = np.frombuffer(dst + src, np.uint8)
        self._h8 = int(self._hdr[:8].view(np.int64)[0])
        self._h4 = int(self._hdr[8:].view(np.int32)[0])

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.ether_rewrite

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        self._k(pool.data, pool.off, pool.mac, batch.idx, self._hdr, self._h8, self._h4)
        return batch

    def push(self, port: int, batch: PacketBatch) -> None:
        pool = batch.pool
        self._k(pool.data, pool.off, pool.mac, batch.idx, self._hdr, self._h8, self._h4)
        self.outputs[0].push(batch)

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.ether_rewrite(self.dst + self.src)

    def add_handlers(self) -> None:
        self.add_read_handler("src", lambda: unparse_ether(self.src))
        self.add_write_handler("src", lambda v, e: reconfigure_keyword(self, "1 SRC", v, e))
        self.add_read_handler("dst", lambda: unparse_ether(self.dst))
        self.add_write_handler("dst", lambda v, e: reconfigure_keyword(self, "2 DST", v, e))


class EtherMirror(Element):
    """EtherMirror()

    Swaps the Ethernet source and destination addresses.

    Input packets are Ethernet frames; each leaves with its first six and next
    six bytes exchanged.

    Example: ``FromDevice(eth0) -> EtherMirror -> ToDevice(eth0)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.ether_mirror

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        self._k(pool.data, pool.off, batch.idx)
        return batch

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.ether_mirror()


def _parse_tci_word(word: str | None, pcp: int, vid: int) -> tuple[bool, int]:
    """(use_anno, tci) from the VLAN_TCI word and the VLAN_PCP/VLAN_ID values."""
    use_anno = word is not None and word == "ANNO"
    tci = -1
    if word is not None and not use_anno:
        b = Args([word])
        tci = b.read_p("VLAN_TCI", bounded_int(0, 0xFFFF), -1)
        b.complete()
    return use_anno, ((tci if tci >= 0 else vid) | (pcp << 13)) & 0xFFFF


class EtherVLANEncap(_LiveReconfigure):
    """EtherVLANEncap(ETHERTYPE, SRC, DST, VLAN_TCI [, VLAN_PCP, KEYWORDS])

    Prepends an 802.1Q (VLAN-tagged) Ethernet header to every packet.

    The result looks like an Ethernet frame of type 0x8100 carrying the VLAN tag
    and then the inner type ETHERTYPE (a host-order number).  VLAN_TCI is the
    16-bit tag control field (ID plus priority); the word ``ANNO`` takes it from
    each packet's VLAN_TCI annotation instead.  The ID and priority may also be
    given separately with VLAN_ID and VLAN_PCP.  When the packet's VLAN ID equals
    NATIVE_VLAN, a plain Ethernet header is added instead.  To tag frames that
    already have an Ethernet header, use VLANEncap.

    Keyword arguments:

    - VLAN_ID (0-0xFFF): the VLAN ID, when VLAN_TCI is not given.
    - VLAN_PCP (0-7): the priority code point.  Default 0.
    - NATIVE_VLAN (-1-0xFFF): frames for this VLAN get no tag; -1 means none.
      Default 0.

    Handlers: ``src``, ``dst``, ``ethertype``, ``vlan_tci``, ``vlan_id``,
    ``vlan_pcp``, ``native_vlan`` (read/write); ``config`` (read).

    Example: ``EtherVLANEncap(0x0800, 1:1:1:1:1:1, 2:2:2:2:2:2, 1)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.ethertype = 0
        self.src = b"\0" * 6
        self.dst = b"\0" * 6
        self.tci = 0
        self.use_anno = False
        self.native_vlan = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        ethertype = a.read_mp("ETHERTYPE", parse_uint16)
        src = a.read_mp("SRC", parse_ether_address)
        dst = a.read_mp("DST", parse_ether_address)
        word = a.read_p("VLAN_TCI", parse_word)
        pcp = a.read_p("VLAN_PCP", bounded_int(0, 7), 0)
        vid = a.read("VLAN_ID", bounded_int(0, 0xFFF), 0)
        native = a.read("NATIVE_VLAN", bounded_int(-1, 0xFFF), 0)
        a.complete()
        use_anno, tci = _parse_tci_word(word, pcp, vid)
        self.ethertype, self.src, self.dst = ethertype, src, dst
        self.use_anno, self.tci, self.native_vlan = use_anno, tci, native

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        ensure_headroom(pool, batch.idx, 18)
        addrs = self.dst + self.src
        proto = self.ethertype.to_bytes(2, "big")
        for s in batch.idx.tolist():
            tci = _vlan_tci(pool, s) if self.use_anno else self.tci
            if (tci & 0xFFF) == self.native_vlan:
                hdr = addrs + proto
            else:
                hdr = addrs + ETHERTYPE_8021Q.to_bytes(2, "big") + tci.to_bytes(2, "big") + proto
            n = len(hdr)
            o = int(pool.off[s]) - n
            pool.data[s, o: o + n] = np.frombuffer(hdr, np.uint8)
            pool.off[s] = o
            pool.length[s] += n
            pool.mac[s] = o
            pool.nh[s] = o + n
        return batch

    def _config_text(self) -> str:
        parts = [unparse_ether(self.src), unparse_ether(self.dst), str(self.ethertype)]
        if self.use_anno:
            parts.append("ANNO")
        else:
            parts.append(f"VLAN_ID {self.tci & 0xFFF}")
            parts.append(f"VLAN_PCP {(self.tci >> 13) & 7}")
        if self.native_vlan != 0:
            parts.append(f"NATIVE_VLAN {self.native_vlan}")
        return ", ".join(parts)

    def add_handlers(self) -> None:
        self.add_read_handler("config", self._config_text, CALM)
        add_ether_handler(self, "src", self, "src")
        add_ether_handler(self, "dst", self, "dst")
        add_int_handler(self, "ethertype", self, "ethertype", lo=0, hi=0xFFFF, what="uint16_t")
        self.add_read_handler("vlan_tci", lambda: "ANNO" if self.use_anno else self.tci)
        self.add_write_handler("vlan_tci", lambda v, e: reconfigure_keyword(self, "3 VLAN_TCI", v, e))
        for name, key in (("vlan_id", "VLAN_ID"), ("vlan_pcp", "VLAN_PCP"), ("native_vlan", "NATIVE_VLAN")):
            add_keyword_handlers(self, name, key)


class EtherVlanEncap(EtherVLANEncap):
    """EtherVlanEncap(...)

    Old name of EtherVLANEncap.
    """

    click_name = "EtherVlanEncap"


class VLANEncap(Element):
    """VLANEncap([VLAN_TCI, VLAN_PCP, KEYWORDS])

    Inserts an 802.1Q VLAN tag into Ethernet frames.

    Input packets must start with an Ethernet header.  A 4-byte tag (type
    ETHERTYPE, then the TCI) is inserted after the addresses.  VLAN_TCI is the
    whole tag control field; the word ``ANNO`` takes it from each packet's
    VLAN_TCI annotation.  VLAN_ID and VLAN_PCP give the ID and priority
    separately.  Frames whose VLAN ID equals NATIVE_VLAN are left untagged.  To
    add a full tagged Ethernet header, use EtherVLANEncap.

    Keyword arguments:

    - VLAN_ID (0-0xFFF), VLAN_PCP (0-7, default 0).
    - NATIVE_VLAN (-1-0xFFF): untagged VLAN; -1 means none.  Default 0.
    - ETHERTYPE: the tag's type, default 0x8100 (0x88a8 for 802.1ad QinQ).

    Handlers: ``vlan_tci``, ``vlan_id``, ``vlan_pcp``, ``native_vlan``,
    ``ethertype`` (read/write); ``config`` (read).

    Example: ``EtherEncap(0x0800, 1:1:1:1:1:1, 2:2:2:2:2:2) -> VLANEncap(1)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.tci = 0
        self.use_anno = False
        self.native_vlan = 0
        self.ethertype = ETHERTYPE_8021Q

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        word = a.read_p("VLAN_TCI", parse_word)
        pcp = a.read_p("VLAN_PCP", bounded_int(0, 7), 0)
        vid = a.read("VLAN_ID", bounded_int(0, 0xFFF), 0)
        native = a.read("NATIVE_VLAN", bounded_int(-1, 0xFFF), 0)
        ethertype = a.read("ETHERTYPE", parse_uint16, ETHERTYPE_8021Q)
        a.complete()
        use_anno, tci = _parse_tci_word(word, pcp, vid)
        self.use_anno, self.tci, self.native_vlan, self.ethertype = use_anno, tci, native, ethertype

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        ensure_headroom(pool, batch.idx, 4)
        for s in batch.idx.tolist():
            tci = _vlan_tci(pool, s) if self.use_anno else self.tci
            o = int(pool.off[s])
            if (tci & 0xFFF) == self.native_vlan or o + 12 > pool.slot_size:
                pool.mac[s] = o
                pool.nh[s] = o + 14
                continue
            row = pool.data[s]
            row[o - 4: o + 8] = row[o: o + 12].copy()
            o -= 4
            row[o + 12: o + 16] = np.frombuffer(self.ethertype.to_bytes(2, "big") + tci.to_bytes(2, "big"),
                                                np.uint8)
            pool.off[s] = o
            pool.length[s] += 4
            pool.mac[s] = o
            # Click marks the network header 8 bytes in here (it uses the size of
            # a pointer); kept for identical annotations.
            pool.nh[s] = o + 8
        return batch

    def _config_text(self) -> str:
        if self.use_anno:
            text = "ANNO"
        else:
            text = f"VLAN_ID {self.tci & 0xFFF}, VLAN_PCP {(self.tci >> 13) & 7}"
        if self.native_vlan != 0:
            text += f", NATIVE_VLAN {self.native_vlan}"
        return text

    def add_handlers(self) -> None:
        self.add_read_handler("config", self._config_text, CALM)
        self.add_read_handler("vlan_tci", lambda: "ANNO" if self.use_anno else self.tci)
        self.add_write_handler("vlan_tci", lambda v, e: reconfigure_keyword(self, "0 VLAN_TCI", v, e))
        for name, key in (("vlan_id", "VLAN_ID"), ("vlan_pcp", "VLAN_PCP"),
                          ("native_vlan", "NATIVE_VLAN"), ("ethertype", "ETHERTYPE")):
            add_keyword_handlers(self, name, key)


class VLANDecap(Element):
    """VLANDecap([ANNO, KEYWORDS])

    Removes the 802.1Q tag from tagged Ethernet frames.

    If a frame's outer type is ETHERTYPE, its 4-byte tag is removed, leaving a
    plain Ethernet frame; other frames pass unchanged.  The MAC header annotation
    is set to the (untagged) Ethernet header.

    Keyword arguments:

    - ANNO (boolean): set the VLAN_TCI annotation to the removed tag (0 for
      untagged frames).  Default true.
    - ETHERTYPE: the tag type to recognize.  Default 0x8100.

    Example: ``FromDevice(eth0) -> VLANDecap -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.anno = True
        self.ethertype = ETHERTYPE_8021Q

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        anno = a.read_p("ANNO", parse_bool, True)
        ethertype = a.read("ETHERTYPE", parse_uint16, ETHERTYPE_8021Q)
        a.complete()
        self.anno, self.ethertype = anno, ethertype

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        for s in batch.idx.tolist():
            o = int(pool.off[s])
            row = pool.data[s]
            tci = 0
            if int(pool.length[s]) >= 16 and ((int(row[o + 12]) << 8) | int(row[o + 13])) == self.ethertype:
                tci = (int(row[o + 14]) << 8) | int(row[o + 15])
                row[o + 4: o + 16] = row[o: o + 12].copy()
                o += 4
                pool.off[s] = o
                pool.length[s] -= 4
            pool.mac[s] = o
            pool.nh[s] = o + 14
            if self.anno:
                _set_vlan_tci(pool, s, tci)
        return batch


class SetVLANAnno(_LiveReconfigure):
    """SetVLANAnno(VLAN_TCI [, VLAN_PCP, KEYWORDS])

    Sets every packet's VLAN_TCI annotation.

    The annotation becomes VLAN_TCI, or the combination of the VLAN_ID and
    VLAN_PCP keywords (ID 0-0xFFF, priority 0-7).  EtherVLANEncap(... ANNO) and
    VLANEncap(ANNO) read it.

    Handlers: ``vlan_tci``, ``vlan_id``, ``vlan_pcp`` (read/write); ``config`` (read).

    Example: ``SetVLANAnno(VLAN_ID 2, VLAN_PCP 1)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.tci = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        tci = a.read_p("VLAN_TCI", bounded_int(0, 0xFFFF), -1)
        pcp = a.read_p("VLAN_PCP", bounded_int(0, 7), 0)
        vid = a.read("VLAN_ID", bounded_int(0, 0xFFF), 0)
        a.complete()
        self.tci = ((tci if tci >= 0 else vid) | (pcp << 13)) & 0xFFFF

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        anno = batch.pool.anno
        anno[batch.idx, VLAN_TCI_ANNO] = self.tci >> 8
        anno[batch.idx, VLAN_TCI_ANNO + 1] = self.tci & 0xFF
        return batch

    def _config_text(self) -> str:
        return f"VLAN_ID {self.tci & 0xFFF}, VLAN_PCP {(self.tci >> 13) & 7}"

    def add_handlers(self) -> None:
        self.add_read_handler("config", self._config_text, CALM)
        self.add_read_handler("vlan_tci", lambda: self.tci)
        add_keyword_handlers(self, "vlan_tci", "VLAN_TCI", read=False)
        for name, key in (("vlan_id", "VLAN_ID"), ("vlan_pcp", "VLAN_PCP")):
            add_keyword_handlers(self, name, key)


class SetVlanAnno(SetVLANAnno):
    """SetVlanAnno(...)

    Old name of SetVLANAnno.
    """

    click_name = "SetVlanAnno"


class StripEtherVLANHeader(_LiveReconfigure):
    """StripEtherVLANHeader([NATIVE_VLAN])

    Removes a (possibly 802.1Q-tagged) Ethernet header.

    A frame of type 0x8100 has its 18-byte tagged header removed and its VLAN_TCI
    annotation set from the tag.  Any other frame is taken to belong to
    NATIVE_VLAN: its annotation is set to that value and its 14-byte header
    removed.  If NATIVE_VLAN is negative, untagged frames are dropped instead (or
    sent to output 1, if it exists).  NATIVE_VLAN defaults to 0.

    Example: ``FromDevice(eth0) -> StripEtherVLANHeader(-1) -> ...``
    """

    port_count = "1/1-2"
    processing = "a/ah"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.native_vlan = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        native = a.read_p("NATIVE_VLAN", parse_int, 0)
        a.complete()
        if native > 0xFFF:
            raise ConfigError("bad NATIVE_VLAN")
        self.native_vlan = native

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)

    def _run(self, batch: PacketBatch) -> np.ndarray:
        pool = batch.pool
        ports = np.zeros(len(batch), np.int32)
        for i, s in enumerate(batch.idx.tolist()):
            o = int(pool.off[s])
            row = pool.data[s]
            if o + 16 <= pool.slot_size and ((int(row[o + 12]) << 8) | int(row[o + 13])) == ETHERTYPE_8021Q:
                pool.anno[s, VLAN_TCI_ANNO] = row[o + 14]
                pool.anno[s, VLAN_TCI_ANNO + 1] = row[o + 15]
                n = 18
            elif self.native_vlan >= 0:
                _set_vlan_tci(pool, s, self.native_vlan)
                n = 14
            else:
                ports[i] = 1
                continue
            n = min(n, int(pool.length[s]))
            pool.off[s] += n
            pool.length[s] -= n
        return ports

    def push(self, port: int, batch: PacketBatch) -> None:
        split_push(self, batch, self._run(batch))

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        ports = self._run(batch)
        bad = ports != 0
        if bad.any():
            self.checked_output_push(1, PacketBatch(batch.pool, batch.idx[bad]))
            return batch.take(~bad)
        return batch


class StripEtherVlanHeader(StripEtherVLANHeader):
    """StripEtherVlanHeader([NATIVE_VLAN])

    Old name of StripEtherVLANHeader.
    """

    click_name = "StripEtherVlanHeader"


class HostEtherFilter(_LiveReconfigure):
    """HostEtherFilter(ETHER [, DROP_OWN, DROP_OTHER, KEYWORDS])

    Drops Ethernet frames addressed to other hosts, like a network card would.

    Sets each frame's packet type annotation from its destination address: HOST
    (addressed to ETHER), BROADCAST, MULTICAST or OTHERHOST.  Frames go to output
    0, except that frames sent by ETHER itself are filtered when DROP_OWN is true
    (default false), and OTHERHOST frames when DROP_OTHER is true (default true).
    Filtered frames go to output 1 if it exists, and are dropped otherwise.

    Keyword arguments: DROP_OWN, DROP_OTHER (as above); OFFSET (the Ethernet header
    starts OFFSET bytes into the packet; default 0).

    Handlers: ``ether`` (read/write).

    Example: ``FromDevice(eth0) -> HostEtherFilter(00:11:22:33:44:55) -> ...``
    """

    port_count = "1/1-2"
    processing = "a/ah"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.addr = b"\0" * 6
        self.drop_own = False
        self.drop_other = True
        self.offset = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        addr = a.read_mp("ETHER", parse_ether_address)
        drop_own = a.read_p("DROP_OWN", parse_bool, False)
        drop_other = a.read_p("DROP_OTHER", parse_bool, True)
        offset = a.read("OFFSET", parse_unsigned, 0)
        a.complete()
        self.addr, self.drop_own, self.drop_other, self.offset = addr, drop_own, drop_other, offset

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.host_ether_filter
        self._split_ok = compute_split_ok(self)

    def _run(self, batch: PacketBatch) -> np.ndarray:
        pool = batch.pool
        out = np.empty(len(batch), np.int32)
        self._k(pool.data, pool.off, pool.length, pool.ptype, batch.idx, self.offset,
                np.frombuffer(self.addr, np.uint8), self.drop_own, self.drop_other, out)
        return out

    def push(self, port: int, batch: PacketBatch) -> None:
        split_push(self, batch, self._run(batch))

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        ports = self._run(batch)
        bad = ports != 0
        if bad.any():
            self.checked_output_push(1, PacketBatch(batch.pool, batch.idx[bad]))
            return batch.take(~bad)
        return batch

    def add_handlers(self) -> None:
        add_ether_handler(self, "ether", self, "addr")


class MarkMACHeader(_LiveReconfigure):
    """MarkMACHeader([OFFSET, LENGTH])

    Sets the MAC header annotation.

    The MAC header starts OFFSET bytes into the packet (default 0).  If LENGTH is
    given and nonzero, the header is LENGTH bytes long and the network header
    annotation is set just after it.

    Example: ``MarkMACHeader(0, 14)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0
        self.mlength = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.offset = a.read_p("OFFSET", parse_unsigned, 0)
        self.mlength = a.read_p("LENGTH", parse_unsigned, 0)
        a.complete()

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        start = pool.off[batch.idx] + self.offset
        pool.mac[batch.idx] = start
        if self.mlength:
            pool.nh[batch.idx] = start + self.mlength
        return batch
