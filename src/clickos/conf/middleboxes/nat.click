// nat: a carrier-grade NAT (network address and port translation).
//
// Subscribers behind interface 0 use the shared address space
// 100.64.0.0/10.  Their TCP and UDP flows leave on interface 1 from the one
// public address 198.51.100.1, each with a source port from 1024-65535 (the
// subscriber's own port when it is free, another one when not), and replies
// to those ports are translated back.  Dropped: packets from the inside that
// are not TCP or UDP from 100.64.0.0/10, and packets from the outside that
// belong to no mapping.
//
// Both sides are reached through one router each (the access router inside,
// the upstream router outside), whose Ethernet addresses are configured; the
// NAT answers ARP for its own addresses.
//
//   click nat.click DEV0=pcap:inside.pcap,out=to-inside.pcap \
//       DEV1=pcap:outside.pcap,out=to-outside.pcap

AddressInfo(
    inside   100.64.0.1    02:00:00:00:00:01,
    outside  198.51.100.1  02:00:00:00:01:01,
    access_router          02:00:00:00:00:fe,
    upstream_router        02:00:00:00:01:fe,
);

c0 :: Classifier(12/0806 20/0001,                // ARP requests
                 12/0800 26/6440%ffc0,           // IPv4 from 100.64.0.0/10
                 -);                             // anything else: dropped
c1 :: Classifier(12/0806 20/0001, 12/0800, -);
to_inside :: ToDevice(0);
to_outside :: ToDevice(1);

FromDevice(0) -> c0;
FromDevice(1) -> c1;
c0[0] -> ARPResponder(inside) -> to_inside;
c1[0] -> ARPResponder(outside) -> to_outside;
c0[2] -> Discard;
c1[2] -> Discard;

// Input 0: subscribers' packets, mapped to the public address and a port of
// the range (packets neither TCP nor UDP are dropped); input 1: packets from
// the outside, which pass only as replies.  CheckIPHeader2 checks versions and
// lengths; IP checksums are updated incrementally, not verified, so a corrupt
// header stays corrupt and its receiver drops it.
nat :: IPRewriter(pattern 198.51.100.1 1024-65535 - - 0 1, drop);

c0[1] -> CheckIPHeader2(14) -> [0]nat;
c1[1] -> CheckIPHeader2(14) -> [1]nat;

nat[0] -> EtherRewrite(outside, upstream_router) -> to_outside;
nat[1] -> EtherRewrite(inside, access_router) -> to_inside;
