"""The error users see: one sentence that says what is wrong and what to do."""


class GadgetError(Exception):
    """A problem with the request or the host, worded for the user (no traceback needed)."""
