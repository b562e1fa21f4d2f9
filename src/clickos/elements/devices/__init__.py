"""Devices: FromDevice/ToDevice bound at run time to pcap files, generators or sinks."""
