"""Recorders: gadgets that keep recording in the background (traceloop), their hosts' service, and clients."""
