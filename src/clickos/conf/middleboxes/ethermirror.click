// ethermirror: sends every frame back where it came from.
// The Ethernet source and destination addresses of each frame received on
// interface 0 are swapped and the frame leaves on interface 0 again.
//
//   click ethermirror.click DEV0=pcap:in.pcap,out=out.pcap

FromDevice(0) -> EtherMirror -> ToDevice(0);
