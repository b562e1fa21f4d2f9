// wire: the simplest middlebox -- a cable.
// Every frame received on interface 0 leaves unchanged on interface 1.
//
//   click wire.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap

FromDevice(0) -> ToDevice(1);
