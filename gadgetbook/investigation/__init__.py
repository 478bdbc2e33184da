"""Investigations: several gadgets run together on the same targets, their DataFrames on one clock, joined
(DNS names of peers, the process behind each row), drawn on one timeline, saved and compared as a whole."""

from gadgetbook.investigation.result import Investigation
from gadgetbook.investigation.start import LiveInvestigation, investigate, start_investigation

__all__ = ["Investigation", "LiveInvestigation", "investigate", "start_investigation"]
