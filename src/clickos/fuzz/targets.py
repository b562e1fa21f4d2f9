"""The element configurations the fuzzer exercises.

Every element that reads or writes IP, ICMP, TCP, UDP or ARP headers, in the
configurations that reach its different paths: every entry of
``tests/test_ip.py``'s ``FUZZ_ELEMENTS`` (the Ethernet elements included),
the routing tables, IPFilter/IPClassifier with several expressions, the whole
rewriter family (both inputs, patterns, named patterns, a RoundRobinIPMapper,
ICMPRewriter and FTPPortMapper in front of or beside their rewriters),
ARPQuerier, the analysis elements (AggregateIPFlows, AggregateCounter,
IPRateMonitor, TimeFilter, AdjustTimestamp, ToIPSummaryDump, ToDump), the IDS
matchers, HashSwitch and RandomSample.

A target's Click text names the element under test ``e`` (``element`` says
otherwise); ``{tmp}`` stands for a scratch directory.  Inputs and outputs
default to the element's largest port counts; ``ins``/``outs`` list
``(element, port)`` pairs when the traffic enters or leaves elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickos.io.ipsummary import EXTRA_PACKETS_ANNO


@dataclass(frozen=True)
class Target:
    label: str
    config: str
    element: str = "e"
    nin: int | None = None
    nout: int | None = None
    ins: tuple[tuple[str, int], ...] | None = None
    outs: tuple[tuple[str, int], ...] | None = None
    profile: str | tuple[str, ...] = "ip"   # packet profile, or one per input
    cost: float = 1.0                        # rough relative run time (for scheduling)
    # offsets of 32-bit annotations whose random values are kept below 16 (an
    # element that loops once per unit of them, like MULTIPACKET, would otherwise
    # run for hours on one packet, as Click would)
    small_anno: tuple[int, ...] = ()

    def profile_of(self, port: int) -> str:
        if isinstance(self.profile, str):
            return self.profile
        return self.profile[port % len(self.profile)]


def _t(cls: str, cfg: str = "", *, suffix: str = "", **kw: object) -> Target:
    label = f"{cls}({cfg})" + (f" {suffix}" if suffix else "")
    return Target(label, f"e :: {cls}({cfg});", **kw)  # type: ignore[arg-type]


# The element configurations tests/test_ip.py also runs (it imports this list),
# with the packet profile each element expects.
_ETHER = {"EtherRewrite", "EtherMirror", "HostEtherFilter", "MarkMACHeader", "StripEtherVLANHeader", "VLANEncap",
          "VLANDecap", "ARPPrint", "IPInputCombo"}
_ARP = {"ARPResponder", "ARPPrint"}
TEST_IP_FUZZ_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("EtherEncap", "0x800, 1:1:1:1:1:1, 2:2:2:2:2:2"), ("EtherRewrite", "1:1:1:1:1:1, 2:2:2:2:2:2"),
    ("EtherMirror", ""), ("HostEtherFilter", "1:1:1:1:1:1"), ("MarkMACHeader", "4, 14"),
    ("StripEtherVLANHeader", ""), ("EtherVLANEncap", "0x800, 1:1:1:1:1:1, 2:2:2:2:2:2, ANNO"),
    ("VLANEncap", "ANNO"), ("VLANDecap", ""), ("SetVLANAnno", "3"), ("ARPResponder", "0/0 1:1:1:1:1:1"),
    ("ARPPrint", ""), ("CheckIPHeader", ""), ("CheckIPHeader2", "OFFSET 3"), ("MarkIPHeader", "2"),
    ("StripIPHeader", ""), ("UnstripIPHeader", ""), ("StripToNetworkHeader", ""), ("DecIPTTL", ""),
    ("IPPrint", "CONTENTS hex"), ("IPPrint", "PAYLOAD ascii"), ("IPEncap", "4, 1.0.0.1, DST_ANNO"),
    ("IPFragmenter", "30, false"), ("IPReassembler", ""), ("IPGWOptions", "1.1.1.1"), ("FixIPSrc", "1.1.1.1"),
    ("GetIPAddress", "IP src"), ("GetIPAddress", "60"), ("SetIPAddress", "1.2.3.4"), ("StoreIPAddress", "dst"),
    ("StoreIPAddress", "1.2.3.4, 9"), ("StoreIPAddress", "0"), ("SetIPChecksum", ""), ("SetIPDSCP", "5"),
    ("MarkIPCE", ""), ("DropBroadcasts", ""), ("IPInputCombo", "1"), ("LinearIPLookup", "0/0 0"),
    ("RadixIPLookup", "1.0.0.0/8 0"), ("DirectIPLookup", "0/0 1.1.1.1 0"), ("RangeIPLookup", "0/0 0"),
    ("CheckICMPHeader", ""), ("ICMPError", "1.1.1.1, unreachable, host"), ("ICMPPingResponder", ""),
    ("ICMPPingEncap", "1.1.1.1, 2.2.2.2"), ("ICMPIPEncap", "1.1.1.1, 2.2.2.2, 13"), ("CheckTCPHeader", ""),
    ("CheckUDPHeader", ""),
    ("SetTCPChecksum", "true"), ("SetUDPChecksum", ""), ("UDPIPEncap", "1.1.1.1, 1, 2.2.2.2, 2"),
)

# Relative run times (1 = about 15 microseconds a packet), measured; they only
# order the work of parallel jobs, longest first.
_SLOW = {"IPPrint": 3.0, "IPReassembler": 3.0, "ICMPPingEncap": 3.0, "ICMPIPEncap": 3.0, "IPFragmenter": 2.0}


def _test_ip_targets() -> list[Target]:
    out = []
    for cls, cfg in TEST_IP_FUZZ_ELEMENTS:
        profile = "arp" if cls in _ARP else ("ether" if cls in _ETHER else "ip")
        cost = 40.0 if (cls, cfg) == ("IPFragmenter", "30, false") else _SLOW.get(cls, 1.0)
        out.append(_t(cls, cfg, profile=profile, cost=cost))
    return out


_REWRITE_PROFILE = "ip"
_SUMDUMP_FIELDS = ("timestamp ntimestamp ts_sec ts_usec ts_usec1 first_timestamp ip_src ip_dst ip_proto ip_len "
                   "ip_id ip_tos ip_dscp ip_ecn ip_ttl ip_hl ip_sum ip_frag ip_fragoff ip_opt ip_capture_len "
                   "sport dport tcp_seq tcp_ack tcp_flags tcp_off tcp_window tcp_urp tcp_opt tcp_ntopt tcp_sack "
                   "udp_len icmp_type icmp_code icmp_type_name icmp_code_name icmp_flowid icmp_seq "
                   "icmp_nextmtu payload payload_len payload_md5 payload_md5_hex count link direction "
                   "aggregate wire_len eth_src eth_dst eth_type")


def _more_targets() -> list[Target]:
    t: list[Target] = []
    # -- header checks, one-output variants (the drop paths) and keyword variants
    for cls in ("CheckIPHeader", "CheckIPHeader2", "CheckICMPHeader", "CheckTCPHeader", "CheckUDPHeader",
                "DecIPTTL", "ICMPPingResponder", "IPReassembler", "IPFragmenter(576)", "StoreIPAddress(src)",
                "DropBroadcasts", "IPGWOptions(1.1.1.1)"):
        name, _, rest = cls.partition("(")
        t.append(_t(name, rest[:-1] if rest else "", suffix="[1 output]", nout=1))
    t += [
        _t("CheckIPHeader", "INTERFACES 10.0.0.1/24 1.0.0.1/8, VERBOSE true, DETAILS true"),
        _t("CheckIPHeader", "OFFSET 14, CHECKSUM false", profile="ether"),
        _t("CheckIPHeader", "BADSRC 10.0.0.255 255.255.255.255, GOODDST 10.0.0.1"),
        _t("CheckICMPHeader", "VERBOSE true, DETAILS true"),
        _t("CheckTCPHeader", "VERBOSE true, DETAILS true"),
        _t("CheckUDPHeader", "VERBOSE true, DETAILS true"),
        _t("MarkIPHeader", "14", profile="ether"),
        _t("DecIPTTL", "MULTICAST false"),
        _t("IPPrint", "TTL true, ID true, TOS true, LENGTH true, AGGREGATE true, PAINT true, SWAP false, "
                      "CONTENTS ascii, MAXLENGTH -1", cost=5.0),
        _t("IPPrint", "x, OUTFILE {tmp}/ipprint.txt, TIMESTAMP false", cost=4.0),
        _t("IPEncap", "ipip, 1.0.0.1, 2.2.2.2, TTL 1, DF true, CE true"),
        _t("IPFragmenter", "576", cost=2.0),
        _t("IPFragmenter", "1500, HONOR_DF false, VERBOSE true", cost=2.0),
        _t("IPFragmenter", "68, HEADROOM 0", cost=11.0),
        _t("IPReassembler", "HIMEM 4096, MAX_MTU_ANNO 20", cost=2.0),
        _t("IPGWOptions", "1.1.1.1, 2.2.2.2 3.0.0.1", cost=1.5),
        _t("ICMPError", "1.1.1.1, parameterproblem", cost=2.0),
        _t("ICMPError", "1.1.1.1, redirect, host", cost=2.0),
        _t("ICMPError", "1.1.1.1, unreachable, needfrag, PMTU 576", cost=2.0),
        _t("ICMPError", "1.1.1.1, timeexceeded, BADADDRS 10.0.0.255 3.0.0.1, MTU 100", cost=2.0),
        _t("ICMPError", "1.1.1.1, 3, 3, SET_FIX_ANNO false, MTU 1500", cost=2.0),
        _t("ICMPIPEncap", "1.1.1.1, 2.2.2.2, echo, IDENTIFIER 7"),
        _t("UDPIPEncap", "1.1.1.1, 1, DST_ANNO, 2, false"),
        _t("GetIPAddress", "IP dst, ANNO 4"),
        _t("IPInputCombo", "1, INTERFACES 10.0.0.1/24", profile="ether"),
        _t("IPOutputCombo", "1, 1.1.1.1, 576", cost=1.5),
        _t("IPOutputCombo", "0, 10.0.0.1, 68", cost=1.5),
        # -- routing tables
        _t("StaticIPLookup", "10.0.0.0/8 0, 0/0 1.1.1.1 1", nout=2),
        _t("LinearIPLookup", "10.0.0.1/32 0, 10.0.0.0/24 1, 1.0.0.0/8 18.26.4.1 2, 0/0 2.2.2.2 1", nout=3),
        _t("RadixIPLookup", "10.0.0.0/24 0, 10.0.0.1/32 1, 255.255.255.255/32 2, 0/0 3.0.0.1 1", nout=3),
        _t("DirectIPLookup", "10.0.0.0/8 0, 10.0.0.0/30 1.1.1.1 1, 224.0.0.0/4 2", nout=3),
        _t("RangeIPLookup", "1.0.0.0/8 0, 1.0.0.0/24 1, 2.0.0.0/7 2, 0/0 2", nout=3),
        # -- classification
        _t("IPFilter", "allow src host 10.0.0.1 && tcp dst port 80, deny ip frag, allow icmp type echo, "
                       "allow udp and (src port 53 or dst port 53), drop all", nout=1),
        _t("IPFilter", "0 tcp opt syn && not tcp opt ack, 1 udp src port 53 or dst port 53, 2 ip hl > 5, "
                       "1 ip[9] = 47, 2 ip ttl < 2, deny all", nout=3),
        _t("IPClassifier", "tcp, udp dst port 53, icmp, -", nout=4),
        _t("IPClassifier", "src net 10.0.0.0/8 and dst net 1.0.0.0/8, ip frag, ip unfrag and tcp[13] & 2 != 0, "
                           "transp[0:4] = 0x00140015, ip len > 1000, ip ect, icmp type 3 or icmp type 11, "
                           "dst port >= 1024 and dst port <= 1030, src or dst host 255.255.255.255, "
                           "ether src 0:1:2:3:4:5, true", nout=11),
        _t("IPClassifier", "dst port ftp or src port www, (src host 1.0.0.1 or dst host 2.2.2.2) and not udp, "
                           "ip[100:4] = 0x01020304, transp[40] = 7, tcp opt fin or tcp opt rst, -", nout=6),
        _t("Classifier", "12/0800, 12/0806 20/0001, 12/8100, -", nout=4, profile="ether"),
        _t("Classifier", "9/06 22/0050%fff0, 9/11, 0/45, -", nout=4),
        _t("HashSwitch", "16, 4", nout=4),
        _t("HashSwitch", "0, 1", nout=3),
        _t("HashSwitch", "12, 8", nout=8),
        _t("HashSwitch", "1500, 4", nout=2),
        _t("RandomSample", "0.5", nout=2),
        _t("RandomSample", "SAMPLE 0.1", nout=1),
        _t("RandomSample", "DROP 0.3, ACTIVE false", nout=2),
        _t("StringMatcher", r'attack, /etc/passwd, "\<de ad be ef>", PORT', nout=2),
        _t("StringMatcher", "cmd.exe", nout=1, suffix="[1 output]"),
        _t("RegexMatcher", r'"GET /[^ ]*\.php", "(?i)union\s+select", "^E", "PORT [0-9]+,"', nout=2),
        # -- ARP
        _t("ARPQuerier", "1.0.0.1, 1:1:1:1:1:1", nin=2, nout=2, profile=("ip", "arp"), cost=10.0),
        _t("ARPQuerier", "10.0.0.1/24, 2:2:2:2:2:2, CAPACITY 8, ENTRY_PACKET_CAPACITY 2, POLL_TIMEOUT 1, "
                         "TIMEOUT 3, BROADCAST_POLL true", nin=2, nout=1, profile=("ip", "arp", "ether"), cost=20.0),
        _t("ARPResponder", "10.0.0.1/24 1.0.0.1 2:2:2:2:2:2, 3.0.0.0/8 3:3:3:3:3:3", nout=2, profile="arp"),
        # -- rewriters
        _t("IPRewriter", "pattern 1.0.0.1 1024-65535# - - 0 1, drop", nin=2, nout=2, cost=2.0),
        _t("IPRewriter", "pattern 1.0.0.1 1024-65535 - - 0 1, pattern 2.0.0.1 - - - 1 0", nin=2, nout=2, cost=2.0),
        _t("IPRewriter", "pattern 1.0.0.1 1024-1030? - - 0 1, keep 1 0, pass 2, MAPPING_CAPACITY 10, "
                         "REAP_INTERVAL 1, TCP_TIMEOUT 2, TCP_DONE_TIMEOUT 1, TCP_NODATA_TIMEOUT 1, UDP_TIMEOUT 1, "
                         "TCP_GUARANTEE 0, UDP_GUARANTEE 0", nin=3, nout=3, cost=2.0),
        _t("IPRewriter", "pattern - - 10.0.0.1 80 0 1, keep 0 1, REPLY_ANNO 18, DST_ANNO false", nin=2, nout=2,
           cost=2.0),
        Target("IPRewriter(pattern NAME) + IPRewriterPatterns",
               "IPRewriterPatterns(nat 1.0.0.1 1024-65535# - -, lb - - 10.0.0.1 80);"
               "e :: IPRewriter(pattern nat 0 1, pattern lb 1 0);", nin=2, nout=2, cost=2.0),
        Target("IPRewriter(RoundRobinIPMapper)",
               "m :: RoundRobinIPMapper(- - 10.0.0.1 - 0 1, - - 10.0.0.2 - 0 1, 1.0.0.1 1024-65535 - - 0 1);"
               "e :: IPRewriter(m, drop);", nin=2, nout=2, cost=2.0),
        _t("TCPRewriter", "keep 0 1, pass 1", nin=2, nout=2, cost=2.0),
        _t("TCPRewriter", "pattern 1.0.0.1 1024-65535 - - 0 1, drop, TCP_DONE_TIMEOUT 1, TCP_NODATA_TIMEOUT 2, "
                          "REAP_INTERVAL 3, MAPPING_CAPACITY 50", nin=2, nout=2, cost=2.0),
        _t("UDPRewriter", "pattern 1.0.0.1 1024-1030# - - 0 1, keep 1 0, MAPPING_CAPACITY 20", nin=2, nout=2,
           cost=2.0),
        _t("UDPRewriter", "pattern - - 10.0.0.1 53 0 1, drop, UDP_STREAMING_TIMEOUT 1, REAP_INTERVAL 2",
           nin=2, nout=2, cost=2.0),
        _t("IPAddrRewriter", "pattern 3.0.0.0/24 - 0 1, drop", nin=2, nout=2, cost=2.0),
        _t("IPAddrRewriter", "pattern 3.0.0.1-3.0.0.2# - 0 1, keep 1 0, MAPPING_CAPACITY 3, TIMEOUT 2, "
                             "REAP_INTERVAL 1", nin=2, nout=2, cost=2.0),
        _t("IPAddrPairRewriter", "pattern 3.0.0.1-3.0.0.9 - 0 1, keep 1 0", nin=2, nout=2, cost=2.0),
        _t("ICMPPingRewriter", "pattern 2.0.0.2 - 0-65535 0 1, pass 0", nin=2, nout=2, cost=2.0),
        _t("ICMPPingRewriter", "pattern 1.0.0.1 - 0-65535# 0 1, drop, MAPPING_CAPACITY 4, TIMEOUT 1", nin=2,
           nout=2, cost=2.0),
        Target("ICMPRewriter(rw prw) beside IPRewriter/ICMPPingRewriter",
               "rw :: IPRewriter(pattern 1.0.0.1 1024-65535 - - 0 1, drop);"
               "prw :: ICMPPingRewriter(pattern 1.0.0.1 - 0-65535 0 1, drop);"
               "e :: ICMPRewriter(rw prw, DST_ANNO false);",
               ins=(("rw", 0), ("rw", 1), ("prw", 0), ("prw", 1), ("e", 0), ("e", 0)),
               outs=(("rw", 0), ("rw", 1), ("prw", 0), ("prw", 1), ("e", 0), ("e", 1)), cost=2.0),
        Target("ICMPRewriter(rw:2) beside TCPRewriter",
               "rw :: TCPRewriter(pattern 1.0.0.1 1024-65535 - - 0 1, keep 1 0);"
               "e :: ICMPRewriter(rw:2, REPLY_ANNO 18);",
               ins=(("rw", 0), ("rw", 1), ("e", 0)),
               outs=(("rw", 0), ("rw", 1), ("e", 0), ("e", 1), ("e", 2), ("e", 3)), cost=2.0),
        Target("FTPPortMapper(rw, rw, 0) -> IPRewriter",
               "rw :: IPRewriter(pattern 1.0.0.1 1024-65535 - - 0 1, drop);"
               "e :: FTPPortMapper(rw, rw, 0); e -> [0] rw;",
               ins=(("e", 0), ("rw", 1), ("rw", 0)), outs=(("rw", 0), ("rw", 1)), cost=2.0),
        Target("FTPPortMapper(rw, drw, 0) -> TCPRewriter",
               "rw :: TCPRewriter(pattern 1.0.0.1 1024-65535 - - 0 1, drop);"
               "drw :: IPRewriter(pattern 1.0.0.2 2000-2010 - - 0 1, drop); Idle -> drw -> Discard; "
               "Idle -> [1] drw [1] -> Discard;"
               "e :: FTPPortMapper(rw, drw, 0); e -> [0] rw;",
               ins=(("e", 0), ("rw", 1)), outs=(("rw", 0), ("rw", 1)), cost=2.0),
        # -- analysis
        _t("AggregateIPFlows", "", nout=2, cost=2.0),
        _t("AggregateIPFlows", "ICMP true, FRAGMENTS true, TCP_TIMEOUT 5, TCP_DONE_TIMEOUT 1, UDP_TIMEOUT 2, "
                               "FRAGMENT_TIMEOUT 1, REAP 10", nout=2, cost=2.0),
        _t("AggregateIPFlows", "FRAGMENTS false, TRACEINFO {tmp}/trace.xml", nout=1, cost=2.0),
        _t("AggregateCounter", "", nin=2, nout=2),
        _t("AggregateCounter", "BYTES true, IP_BYTES true, MULTIPACKET false, EXTRA_LENGTH false", nin=1, nout=1),
        _t("AggregateCounter", "AGGREGATE_FREEZE 50, COUNT_FREEZE 100000", nin=2, nout=2),
        Target("AggregateIPFlows -> AggregateCounter(BYTES true)",
               "a :: AggregateIPFlows(ICMP true); a -> e :: AggregateCounter(BYTES true, IP_BYTES true);",
               ins=(("a", 0),), outs=(("e", 0), ("e", 1), ("a", 1)), cost=2.0),
        _t("IPRateMonitor", "PACKETS, 0.5, 256, 600", nin=2, nout=2, cost=1.5),
        _t("IPRateMonitor", "BYTES, 1, 1000, 100, ANNO false", nin=2, nout=2, cost=1.5),
        _t("IPRateMonitor", "PACKETS, 1, 2, 100", nin=2, nout=2, cost=2.0),
        _t("TimeFilter", "START_AFTER 1, INTERVAL 2", nout=2),
        _t("TimeFilter", "START 1000000000, END 1000000100", nout=2),
        _t("TimeFilter", "START_DELAY 0.5, END_AFTER 50, END_CALL e.interval 100000000", nout=1),
        _t("TimeFilter", "END_AFTER 5, END_CALL e.end $t", nout=2, cost=4.0),
        _t("AdjustTimestamp", "-1"),
        _t("AdjustTimestamp", "+1.5, ALL true"),
        _t("AdjustTimestamp", "1, FIRST true"),
        _t("ToIPSummaryDump", "{tmp}/sum.txt, FIELDS " + _SUMDUMP_FIELDS + ", BAD_PACKETS true", nout=1,
           cost=8.0),
        _t("ToIPSummaryDump", "{tmp}/sum.bin, FIELDS " + _SUMDUMP_FIELDS.replace(" payload ", " ") + ", BINARY true",
           nout=1, cost=6.0),
        _t("ToIPSummaryDump", "{tmp}/sum2.txt, FIELDS timestamp ip_src sport ip_dst dport ip_proto tcp_flags, "
                              "MULTIPACKET true, VERBOSE true, BANNER fuzz", nout=0, cost=3.0,
           small_anno=(EXTRA_PACKETS_ANNO,)),
        _t("ToDump", "{tmp}/d.pcap, SNAPLEN 96, ENCAP IP", nout=1),
        _t("ToDump", "{tmp}/d2.pcap, ENCAP ETHER, NANO false, UNBUFFERED false", nout=0, profile="ether"),
    ]
    return t


def all_targets() -> list[Target]:
    """Every fuzz target, in a fixed order; labels are unique."""
    targets = _test_ip_targets() + _more_targets()
    seen: set[str] = set()
    out = []
    for t in targets:
        label = t.label
        k = 2
        while label in seen:
            label = f"{t.label} #{k}"
            k += 1
        seen.add(label)
        out.append(t if label == t.label else Target(label, t.config, t.element, t.nin, t.nout, t.ins, t.outs,
                                                     t.profile, t.cost, t.small_anno))
    return out
