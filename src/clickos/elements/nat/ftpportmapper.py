"""FTPPortMapper: translates the address in FTP PORT commands for a NAT."""

from __future__ import annotations

from clickos.core.args import Args
from clickos.core.confparse import parse_int
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.elements.ip.common import in_cksum, pseudo_cksum, update_cksum
from clickos.elements.tcpudp.rewriterbase import IP_PROTO_TCP
from clickos.packet.batch import Packet, PacketBatch


class FTPPortMapper(Element):
    """FTPPortMapper(CONTROL_REWRITER, DATA_REWRITER, DATA_REWRITER_INPUT)

    Rewrites FTP PORT commands so active-mode FTP works through a NAT.

    Expects TCP packets of an FTP control connection, with IP and transport
    header annotations, before they reach CONTROL_REWRITER (a TCPRewriter or
    IPRewriter).  When a packet carries ``PORT a,b,c,d,p,q`` and its control
    connection has a mapping in CONTROL_REWRITER, FTPPortMapper makes (or
    finds) a mapping in DATA_REWRITER for the data connection the server will
    open (from the server's port 20, or control port minus one, to a.b.c.d:pq),
    using that rewriter's input DATA_REWRITER_INPUT to choose it.  It then
    replaces the PORT argument with the mapped address and port, fixes the IP
    length and checksums, and tells CONTROL_REWRITER by how much the
    connection's sequence numbers moved, so later segments and their
    acknowledgements stay consistent.  Other packets pass unchanged.

    Example::

        rw :: IPRewriter(pattern 1.0.0.1 1024-65535 - - 0 1, drop);
        from_inside -> FTPPortMapper(rw, rw, 0) -> [0] rw;
    """

    port_count = "1/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.control = None
        self.data_rw = None
        self.data_input = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        cname = a.read_mp("CONTROL_REWRITER", None)
        dname = a.read_mp("DATA_REWRITER", None)
        dinput = a.read_mp("DATA_REWRITER_INPUT", parse_int)
        a.complete()
        control = self.router.find(cname, self)
        if control is None or control.cast("TCPRewriter") is None:
            raise ConfigError("CONTROL_REWRITER: type mismatch, expected TCPRewriter")
        data = self.router.find(dname, self)
        if data is None or data.cast("IPRewriterBase") is None:
            raise ConfigError("DATA_REWRITER: type mismatch, expected IPRewriterBase")
        if dinput < 0 or dinput >= data.ninputs:
            raise ConfigError("DATA_REWRITER_INPUT out of range")
        self.control, self.data_rw, self.data_input = control, data, dinput

    def can_live_reconfigure(self) -> bool:
        return True

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        for p in batch:
            self._safe_rewrite(p)
        return batch

    def push(self, port: int, batch: PacketBatch) -> None:
        # one packet at a time: the control rewriter downstream must see each
        # packet (and make its mapping) before the next PORT command is examined
        if len(batch) == 1:
            self._safe_rewrite(batch.packet(0))
            self.outputs[0].push(batch)
            return
        for p in batch:
            self._safe_rewrite(p)
            self.outputs[0].push(p.as_batch())

    def _safe_rewrite(self, p: Packet) -> None:
        try:
            self._rewrite(p)
        except (IndexError, ValueError):
            pass  # malformed packets pass through unchanged

    def _rewrite(self, p: Packet) -> None:
        pool, s = p.pool, p.slot
        ip = int(pool.nh[s])
        t = int(pool.th[s])
        start = int(pool.off[s])
        end = start + int(pool.length[s])
        buf = pool.data[s]
        if ip < start or t < ip or t + 20 > end or int(buf[ip + 9]) != IP_PROTO_TCP:
            return
        data_off = t + ((int(buf[t + 12]) >> 4) << 2)
        n = end - data_off
        if n < 5:
            return
        head = bytes(buf[data_off: data_off + 5]).upper()
        if head != b"PORT ":
            return
        sa = int.from_bytes(buf[ip + 12: ip + 16].tobytes(), "big")
        da = int.from_bytes(buf[ip + 16: ip + 20].tobytes(), "big")
        sport = (int(buf[t]) << 8) | int(buf[t + 1])
        dport = (int(buf[t + 2]) << 8) | int(buf[t + 3])
        control = self.control
        cmap = control.get_entry(IP_PROTO_TCP, (sa, sport, da, dport), -1)
        if cmap is None:
            return
        text = bytes(buf[data_off:end])
        pos = 5
        while pos < n and text[pos] == 0x20:
            pos += 1
        arg_start = pos
        nums = [0] * 6
        which = 0
        while pos < n and which < 6:
            c = text[pos]
            if 0x30 <= c <= 0x39:
                nums[which] = nums[which] * 10 + c - 0x30
            elif c == 0x2C:
                which += 1
            else:
                break
            pos += 1
        if which != 5 or pos >= n or text[pos] not in (0x0D, 0x0A):
            return
        if any(x >= 256 for x in nums):
            return
        addr = (nums[0] << 24) | (nums[1] << 16) | (nums[2] << 8) | nums[3]
        port = (nums[4] << 8) | nums[5]
        flow = (addr, port, da, (dport - 1) & 0xFFFF)
        fwd = self.data_rw.get_entry(IP_PROTO_TCP, flow, self.data_input)
        if fwd is None:
            return
        new = fwd.rewritten_flowid()
        na, np_ = new[0], new[1]
        arg = (f"{(na >> 24) & 255},{(na >> 16) & 255},{(na >> 8) & 255},{na & 255},"
               f"{(np_ >> 8) & 255},{np_ & 255}").encode()
        old_len = pos - arg_start
        seq = int.from_bytes(buf[t + 4: t + 8].tobytes(), "big")
        payload = text[:arg_start] + arg + text[pos:]
        grow = len(payload) - n
        if grow > 0:
            p.put(grow)
        elif grow < 0:
            p.take(-grow)
        buf = pool.data[s]
        buf[data_off: data_off + len(payload)] = list(payload)
        end = int(pool.off[s]) + int(pool.length[s])
        old_hw = (int(buf[ip + 2]) << 8) | int(buf[ip + 3])
        iplen = end - ip
        buf[ip + 2] = (iplen >> 8) & 0xFF
        buf[ip + 3] = iplen & 0xFF
        c = (int(buf[ip + 10]) << 8) | int(buf[ip + 11])
        c = update_cksum(c, old_hw, iplen & 0xFFFF)
        buf[ip + 10] = c >> 8
        buf[ip + 11] = c & 0xFF
        control.update_seqno_delta(cmap, (seq + n) & 0xFFFFFFFF, len(arg) - old_len)
        fwd.set_reply_anno(cmap.reply_anno)
        buf[t + 16] = buf[t + 17] = 0
        tcp_len = end - t
        partial = in_cksum(bytes(buf[t:end]))
        csum = pseudo_cksum(partial, bytes(buf[ip:t]), IP_PROTO_TCP, tcp_len)
        buf[t + 16] = csum >> 8
        buf[t + 17] = csum & 0xFF
