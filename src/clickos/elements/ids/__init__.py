"""Intrusion detection elements: payload matching on Hyperscan."""
