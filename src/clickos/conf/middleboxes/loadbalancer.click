// loadbalancer: a layer-4 load balancer.
//
// Clients (interface 0) connect to the virtual service 10.0.0.100, TCP port
// 80.  Each new connection is given to the next of four backends
// 10.0.1.10-13 (interface 1), round robin: its destination address is
// rewritten to the backend's, and the backend's replies are rewritten to
// come from 10.0.0.100 again.  Other packets to the virtual address, and
// packets from the backends that belong to no connection, are dropped.
//
// Clients are reached through a router (client_router); the backends'
// Ethernet addresses are configured.  The balancer answers ARP for the
// virtual address on the client side and for 10.0.1.1 on the backend side.
//
//   click loadbalancer.click DEV0=pcap:clients.pcap,out=to-clients.pcap \
//       DEV1=pcap:servers.pcap,out=to-servers.pcap

AddressInfo(
    vip       10.0.0.100  02:00:00:00:00:64,
    lb        10.0.1.1    02:00:00:00:01:01,
    client_router         02:00:00:00:00:fe,
    backend0  10.0.1.10   02:00:00:00:01:0a,
    backend1  10.0.1.11   02:00:00:00:01:0b,
    backend2  10.0.1.12   02:00:00:00:01:0c,
    backend3  10.0.1.13   02:00:00:00:01:0d,
);

c0 :: Classifier(12/0806 20/0001, 12/0800, -);   // ARP requests, IPv4, other
c1 :: Classifier(12/0806 20/0001, 12/0800, -);
to_clients :: ToDevice(0);
to_backends :: ToDevice(1);

FromDevice(0) -> c0;
FromDevice(1) -> c1;
c0[0] -> ARPResponder(vip) -> to_clients;
c1[0] -> ARPResponder(lb) -> to_backends;
c0[2] -> Discard;
c1[2] -> Discard;

// New connections take the next backend in turn; ports are kept.  Each
// backend has its own output (0-3), where its Ethernet address is filled in;
// replies leave on output 4.
backends :: RoundRobinIPMapper(
    - - 10.0.1.10 - 0 4,
    - - 10.0.1.11 - 1 4,
    - - 10.0.1.12 - 2 4,
    - - 10.0.1.13 - 3 4);
rw :: IPRewriter(backends, drop);

// CheckIPHeader2 checks versions and lengths; IP checksums are updated
// incrementally, not verified, so a corrupt header stays corrupt and its
// receiver drops it.
c0[1] -> CheckIPHeader2(14)
      -> IPFilter(allow dst host vip and tcp dst port 80, deny all)
      -> [0]rw;
c1[1] -> CheckIPHeader2(14) -> [1]rw;

rw[0] -> EtherRewrite(lb, backend0) -> to_backends;
rw[1] -> EtherRewrite(lb, backend1) -> to_backends;
rw[2] -> EtherRewrite(lb, backend2) -> to_backends;
rw[3] -> EtherRewrite(lb, backend3) -> to_backends;
rw[4] -> EtherRewrite(vip, client_router) -> to_clients;
