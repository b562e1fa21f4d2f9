"""Click's ip elements."""
