"""Click's tcpudp elements."""
