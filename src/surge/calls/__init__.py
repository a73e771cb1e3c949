"""Calls: CTI ingest, the call lifecycle and its recorded history, tickets."""
