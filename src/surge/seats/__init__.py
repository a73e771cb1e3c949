"""Seats: agents (local and cloud seats) and the websocket gateway they and the CTI connect to."""
