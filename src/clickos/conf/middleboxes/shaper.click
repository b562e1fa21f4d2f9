// shaper: limits the traffic from interface 0 to interface 1 to $RATE.
//
// Packets wait in a queue of $CAPACITY packets; BandwidthShaper lets them out
// at the configured bandwidth when ToDevice(1) pulls (up to a burst at a
// time).  When the queue is full, arriving packets are dropped (`q.drops`).
//
//   click shaper.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap RATE=10Mbps

define($RATE 1Gbps, $CAPACITY 1024);

FromDevice(0)
    -> q :: Queue($CAPACITY)
    -> shape :: BandwidthShaper($RATE)
    -> ToDevice(1);
