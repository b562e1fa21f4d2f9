"""ClickOS in Python: the Click modular router, batched, in small isolated instances."""

__version__ = "0.1.0"
# The Click release whose language and element behaviour we follow; the global
# `version` handler reports it so Click's tools and tests see a familiar number.
CLICK_VERSION = "2.1"
