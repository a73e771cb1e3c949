"""Surges: the coordinator elects a beleaguered host city and helper cities serve it in waves."""
