"""Routing: the pure policy that pairs waiting calls with free agents, and the dispatcher."""
