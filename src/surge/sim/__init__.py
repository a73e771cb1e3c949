"""The simulator: province scenarios on virtual time, routed by the service's own policy."""
