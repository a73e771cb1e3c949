"""Cities: the registry of the province's 13 hotlines and their live queue figures."""
