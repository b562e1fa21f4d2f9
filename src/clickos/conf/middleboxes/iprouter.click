// iprouter: an IPv4 router between two Ethernet interfaces.
//
//   interface 0: 10.0.0.1/24, 02:00:00:00:00:01
//   interface 1: 10.0.1.1/24, 02:00:00:00:01:01
//   routes: both connected networks, 192.168.0.0/16 via 10.0.1.2,
//           nothing else (ICMP network unreachable).
//
// The router answers ARP for its addresses and resolves next hops with ARP,
// checks IP headers (bad checksums, bad lengths, martian sources are dropped),
// decrements TTLs (fixing checksums incrementally), answers pings to its own
// addresses and sends ICMP errors: time exceeded, network unreachable,
// parameter problem, fragmentation needed (large packets are fragmented), and
// host redirects for packets that leave by the interface they came in on.
//
//   click iprouter.click DEV0=pcap:in0.pcap,out=out0.pcap DEV1=pcap:in1.pcap,out=out1.pcap

AddressInfo(
    if0 10.0.0.1 10.0.0.0/24 02:00:00:00:00:01,
    if1 10.0.1.1 10.0.1.0/24 02:00:00:00:01:01,
);

elementclass Interface { $color, $addr |
    // input: frames from the device; output 0: IP packets (Ethernet header
    // stripped, paint = $color); output 1: frames to send on the device.
    // input 1: IP packets routed to this interface.
    class :: Classifier(12/0806 20/0001,    // ARP request
                        12/0806 20/0002,    // ARP reply
                        12/0800,            // IPv4
                        -);                 // anything else: dropped
    arpq :: ARPQuerier($addr);
    input -> class;
    class[0] -> ARPResponder($addr) -> [1]output;
    class[1] -> [1]arpq;
    class[2] -> IPInputCombo($color, INTERFACES 10.0.0.1/24 10.0.1.1/24) -> [0]output;
    class[3] -> Discard;
    arpq -> [1]output;
    input[1] -> arpq;
}

rt :: RadixIPLookup(
    10.0.0.1/32 0, 10.0.1.1/32 0,                     // the router itself
    10.0.0.0/32 0, 10.0.0.255/32 0,                   // network and broadcast
    10.0.1.0/32 0, 10.0.1.255/32 0,                   //   addresses
    10.0.0.0/24 1,                                    // connected networks
    10.0.1.0/24 2,
    192.168.0.0/16 10.0.1.2 2,                        // via a next-hop router
    0.0.0.0/0 3);                                     // unreachable

i0 :: Interface(1, if0);
i1 :: Interface(2, if1);
FromDevice(0) -> i0 -> rt;
FromDevice(1) -> i1 -> rt;
i0[1] -> ToDevice(0);
i1[1] -> ToDevice(1);

// Packets for the router itself: pings are answered, the rest dropped.
rt[0] -> local :: IPClassifier(icmp type echo and (dst host if0 or dst host if1), -);
local[0] -> ICMPPingResponder -> rt;
local[1] -> Discard;

// Forwarding, one output path per interface.  ICMP errors take the source
// address of the interface they leave by (ICMPError sets FixIPSrc's
// annotation).
elementclass Output { $addr, $color |
    // output 0: packets to send; 1: bad IP options; 2: TTL expired;
    // 3: too big and "don't fragment" set; 4: copies of packets that came in
    // on this interface ($color), for redirects.
    input -> DropBroadcasts
          -> redirect :: PaintTee($color)
          -> gw :: IPGWOptions($addr)
          -> FixIPSrc($addr)
          -> ttl :: DecIPTTL
          -> frag :: IPFragmenter(1500)
          -> [0]output;
    gw[1] -> [1]output;
    ttl[1] -> [2]output;
    frag[1] -> [3]output;
    redirect[1] -> [4]output;
}

rt[1] -> out0 :: Output(if0, 1) -> [1]i0;
rt[2] -> out1 :: Output(if1, 2) -> [1]i1;

out0[1] -> ICMPError(if0, parameterproblem) -> rt;
out0[2] -> ICMPError(if0, timeexceeded) -> rt;
out0[3] -> ICMPError(if0, unreachable, needfrag, PMTU 1500) -> rt;
out1[1] -> ICMPError(if1, parameterproblem) -> rt;
out1[2] -> ICMPError(if1, timeexceeded) -> rt;
out1[3] -> ICMPError(if1, unreachable, needfrag, PMTU 1500) -> rt;
out0[4] -> ICMPError(if0, redirect, host) -> rt;
out1[4] -> ICMPError(if1, redirect, host) -> rt;

rt[3] -> ICMPError(if0, unreachable, net) -> rt;
