// flowmonitor: per-flow accounting on a link from interface 0 to interface 1.
//
// Traffic passes unchanged.  Each TCP or UDP flow (both directions of a
// connection are one flow) gets a number; per flow, `pkts` counts packets and
// `bytes` counts bytes; `rate` measures the link's packet and byte rates, so a
// flow's average rate is its count divided by `rate`'s interval.  Other
// packets are counted by `other`.
//
//   click flowmonitor.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap \
//       -h rate.rate -h rate.byte_rate
//   (write pkts.write_text_file or bytes.write_text_file to dump the counters)

out :: ToDevice(1);

FromDevice(0)
    -> class :: Classifier(12/0800, -)
    -> MarkIPHeader(14)
    -> flows :: AggregateIPFlows
    -> pkts :: AggregateCounter
    -> bytes :: AggregateCounter(BYTES true)
    -> rate :: AverageCounter
    -> out;

flows[1] -> other :: Counter -> out;     // IP, but neither TCP nor UDP
class[1] -> other;                       // not IP
