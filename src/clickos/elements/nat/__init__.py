"""Click's address-translation elements beyond IPRewriter/TCPRewriter/UDPRewriter:
IPAddrRewriter, IPAddrPairRewriter, ICMPPingRewriter, ICMPRewriter,
RoundRobinIPMapper and FTPPortMapper."""
