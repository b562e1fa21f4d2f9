"""Trace reading and writing, flow aggregation and timestamp elements (Click's analysis package)."""
