"""A packet fuzzer for the element library: random and mutated packets pushed,
in batches, through every IP-layer element configuration, with exceptions and
packet-pool invariants (leaks, double frees, packets outside their slots)
reported.  ``clickos fuzz`` is the command; see :mod:`clickos.fuzz.runner`."""

from __future__ import annotations

from clickos.fuzz.packets import PacketGenerator, build_bank
from clickos.fuzz.runner import Runner, TargetResult, check_pool, run, select_targets
from clickos.fuzz.targets import Target, all_targets

__all__ = ["PacketGenerator", "Runner", "Target", "TargetResult", "all_targets", "build_bank", "check_pool", "run",
           "select_targets"]
