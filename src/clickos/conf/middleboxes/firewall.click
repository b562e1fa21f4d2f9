// firewall: a stateful firewall bridging an inside network (interface 0,
// 10.0.0.0/24) and the outside (interface 1).  Frames are forwarded
// unchanged; ARP passes both ways, other non-IP frames are dropped.
//
// Connection tracking comes first: a TCP or UDP packet of a flow already
// allowed, in either direction, passes (IPRewriter 'keep' mappings, created
// when a flow's first packet passes the rules).  Packets of unknown flows
// and other IP packets go through the stateless rules of their direction
// (IPFilter, first match wins, default deny):
//
//   inside -> outside: new TCP connections (SYN) to ports 22, 53, 80, 443;
//                      UDP to ports 53 and 123; ICMP echo requests.
//   outside -> inside: new TCP connections to the web server 10.0.0.10,
//                      ports 80 and 443; ICMP echo replies, destination
//                      unreachable and time exceeded; pings to the server.
//
//   click firewall.click DEV0=pcap:inside.pcap,out=to-inside.pcap \
//       DEV1=pcap:outside.pcap,out=to-outside.pcap

AddressInfo(server 10.0.0.10);

from_inside :: FromDevice(0);
from_outside :: FromDevice(1);
to_inside :: ToDevice(0);
to_outside :: ToDevice(1);

from_inside -> in0 :: Classifier(12/0806, 12/0800, -);
from_outside -> in1 :: Classifier(12/0806, 12/0800, -);
in0[0] -> to_outside;                   // ARP
in1[0] -> to_inside;
in0[2] -> Discard;                      // neither ARP nor IPv4
in1[2] -> Discard;

// Connection tracking.  Inputs 0 and 1 take IP packets from the inside and
// from the outside: TCP and UDP packets of known flows leave on output 0
// (towards the outside) or 1 (towards the inside); the others (unknown flows,
// ICMP, other protocols) leave on output 2 or 3, to the rules.  Inputs 2 and 3
// take newly allowed flows and record them: outbound flows leave on 0 and
// their replies on 1, inbound flows the other way round.
//
// CheckIPHeader2 checks versions and lengths but not IP checksums: the
// firewall changes no bytes, so a corrupt packet reaches its receiver as
// corrupt as it was sent, and is dropped there.
track :: IPRewriter(pass 2, pass 3, keep 0 1, keep 1 0);
track[0] -> to_outside;
track[1] -> to_inside;

in0[1] -> CheckIPHeader2(14) -> [0]track;
in1[1] -> CheckIPHeader2(14) -> [1]track;

outbound :: IPFilter(
    0 tcp opt syn and not tcp opt ack and (dst port 22 or dst port 53 or dst port 80 or dst port 443),
    0 udp and (dst port 53 or dst port 123),
    1 icmp type echo,
    deny all);
inbound :: IPFilter(
    0 dst host server and tcp opt syn and not tcp opt ack and (dst port 80 or dst port 443),
    1 icmp type echo-reply,
    1 icmp type unreachable,
    1 icmp type timeexceeded,
    1 dst host server and icmp type echo,
    deny all);

track[2] -> outbound;
outbound[0] -> [2]track;                // new flow: remember it
outbound[1] -> to_outside;              // allowed, untracked

track[3] -> inbound;
inbound[0] -> [3]track;
inbound[1] -> to_inside;
