"""Supervision: the live list of agents, forced logout, notices to a surge's or a city's agents."""
