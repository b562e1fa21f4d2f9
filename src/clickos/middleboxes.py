"""The nine ClickOS middleboxes: what each does, where its configuration is, how to run it.

Each middlebox is a Click configuration in ``clickos/conf/middleboxes/`` whose
interfaces are ``FromDevice(N)``/``ToDevice(N)``, as in ClickOS.  Devices are
bound when the router starts (see :mod:`clickos.elements.devices.binding`):
``DEV0=pcap:in.pcap`` reads a capture, ``DEV1=pcap:out.pcap`` writes one,
``DEV0=gen:udp,len=64,count=1000000`` generates traffic from memory.

``python -m clickos.middleboxes`` lists them with their paths;
``python -m clickos.middleboxes --write-ids-patterns`` regenerates the IDS's
pattern file (``ids-patterns.click``) from :func:`ids_patterns`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from dataclasses import dataclass

CONF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf", "middleboxes")
IDS_PATTERN_FILE = "ids-patterns.click"
IDS_PATTERN_COUNT = 1000
IDS_PATTERN_SEED = 2014


@dataclass(frozen=True)
class Middlebox:
    """One middlebox: its name, configuration file, a one-line summary and a command line."""

    name: str
    config: str
    summary: str
    run: str

    @property
    def path(self) -> str:
        """Absolute path of the configuration file."""
        return os.path.join(CONF_DIR, self.config)

    def text(self) -> str:
        """The configuration text."""
        with open(self.path, encoding="utf-8") as f:
            return f.read()


MIDDLEBOXES: tuple[Middlebox, ...] = (
    Middlebox("wire", "wire.click",
              "forwards every frame from interface 0 to interface 1 unchanged",
              "click wire.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap"),
    Middlebox("ethermirror", "ethermirror.click",
              "swaps each frame's Ethernet addresses and sends it back out of interface 0",
              "click ethermirror.click DEV0=pcap:in.pcap,out=out.pcap"),
    Middlebox("iprouter", "iprouter.click",
              "IPv4 router for two interfaces: ARP, longest-prefix routing, TTL, checksums, ICMP errors",
              "click iprouter.click DEV0=pcap:in0.pcap,out=out0.pcap DEV1=pcap:in1.pcap,out=out1.pcap"),
    Middlebox("firewall", "firewall.click",
              "stateless IPFilter rules plus connection tracking: replies of allowed flows pass",
              "click firewall.click DEV0=pcap:inside.pcap,out=to-inside.pcap "
              "DEV1=pcap:outside.pcap,out=to-outside.pcap"),
    Middlebox("nat", "nat.click",
              "carrier-grade NAPT: subscribers 100.64.0.0/10 behind 198.51.100.1, ports 1024-65535",
              "click nat.click DEV0=pcap:inside.pcap,out=to-inside.pcap "
              "DEV1=pcap:outside.pcap,out=to-outside.pcap"),
    Middlebox("loadbalancer", "loadbalancer.click",
              "spreads connections to the virtual address 10.0.0.100 round-robin over four backends",
              "click loadbalancer.click DEV0=pcap:clients.pcap,out=to-clients.pcap "
              "DEV1=pcap:servers.pcap,out=to-servers.pcap"),
    Middlebox("flowmonitor", "flowmonitor.click",
              "per-flow packet and byte counters and link rates; traffic passes 0 -> 1 unchanged",
              "click flowmonitor.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap -h rate.rate"),
    Middlebox("ids", "ids.click",
              "intrusion detection: 1,000 byte-string signatures; matching packets are dropped and counted",
              "click ids.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap DEV2=pcap:alerts.pcap -h alerts.count"),
    Middlebox("shaper", "shaper.click",
              "limits traffic from interface 0 to interface 1 to RATE, queueing bursts",
              "click shaper.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap RATE=10Mbps"),
)


def get(name: str) -> Middlebox:
    """The middlebox called ``name``; raises KeyError."""
    for m in MIDDLEBOXES:
        if m.name == name:
            return m
    raise KeyError(name)


# -- the IDS pattern set -----------------------------------------------------------------------

# Signature-like strings written for this project (attack tools, shell commands,
# injection fragments); the rest of the set is random tokens of 8-20 bytes.
_SEED_SIGNATURES: tuple[bytes, ...] = (
    b"/etc/passwd", b"/etc/shadow", b"cmd.exe /c", b"powershell -enc", b"/bin/sh -i",
    b"<script>alert(", b"UNION SELECT", b"' OR '1'='1", b"../../../../", b"wget http://",
    b"curl -fsSL http", b"chmod 777 /tmp", b"nc -e /bin/sh", b"xp_cmdshell", b"eval(base64_decode(",
    b"() { :; };", b"DROP TABLE users", b"/wp-admin/admin-ajax.php?action=", b"User-Agent: sqlmap",
    b"Nmap Scripting Engine", b"User-Agent: masscan", b"\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90",
    b"/cgi-bin/test-cgi", b"/.git/config", b"/server-status?auto", b"AAAAAAAAAAAAAAAAAAAAAAAA",
    b"rm -rf / --no-preserve", b"/proc/self/environ", b"php://input", b"file:///etc/",
    b"SELECT LOAD_FILE(", b"INTO OUTFILE '", b"document.cookie", b"onerror=alert(",
    b"\r\nSet-Cookie: injected", b"Authorization: Basic YWRtaW46YWRtaW4=", b"/manager/html/upload",
    b"exec master..", b"/bin/busybox MIRAI", b"TSource Engine Query",
)
_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=?&%:"


def ids_patterns(count: int = IDS_PATTERN_COUNT, seed: int = IDS_PATTERN_SEED) -> list[bytes]:
    """``count`` distinct patterns: the signature-like seeds, then random tokens."""
    rng = random.Random(seed)
    out = list(_SEED_SIGNATURES[:count])
    seen = set(out)
    while len(out) < count:
        n = rng.randint(8, 20)
        p = "".join(rng.choice(_TOKEN_ALPHABET) for _ in range(n)).encode()
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _click_quote(p: bytes) -> str:
    """A double-quoted Click string for ``p`` (backslash escapes for the rest)."""
    out = ['"']
    for b in p:
        c = chr(b)
        if c in "\"\\$":
            out.append("\\" + c)
        elif c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\<{b:02x}>")
    out.append('"')
    return "".join(out)


def ids_pattern_config(patterns: list[bytes] | None = None) -> str:
    """The text of ``ids-patterns.click``: an element class ``IDSSignatures``."""
    pats = ids_patterns() if patterns is None else patterns
    lines = [
        "// Generated by `python -m clickos.middleboxes --write-ids-patterns`; do not edit.",
        f"// {len(pats)} byte-string signatures (seed {IDS_PATTERN_SEED}) for ids.click.",
        "//",
        "// IDSSignatures: frames matching no signature leave on output 0, the others on output 1.",
        "",
        "elementclass IDSSignatures {",
        "    input -> sm :: StringMatcher(",
    ]
    body = [f"        {_click_quote(p)}" for p in pats]
    lines.append(",\n".join(body))
    lines += [
        "    ) -> [0]output;",
        "    sm[1] -> [1]output;",
        "}",
        "",
    ]
    return "\n".join(lines)


def write_ids_patterns(path: str | None = None) -> str:
    """Write the pattern file (by default next to ids.click); returns its path."""
    path = path or os.path.join(CONF_DIR, IDS_PATTERN_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(ids_pattern_config())
    return path


def main(argv: list[str] | None = None) -> int:
    """List the middleboxes, or regenerate the IDS pattern file."""
    ap = argparse.ArgumentParser(prog="python -m clickos.middleboxes")
    ap.add_argument("--write-ids-patterns", action="store_true",
                    help=f"regenerate {IDS_PATTERN_FILE} from ids_patterns()")
    args = ap.parse_args(argv)
    if args.write_ids_patterns:
        print(write_ids_patterns())
        return 0
    for m in MIDDLEBOXES:
        print(f"{m.name:13s} {m.summary}\n{'':13s} {m.path}\n{'':13s} {m.run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
