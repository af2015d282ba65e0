"""Health checking: the pure state machine, the probes and the HealthService."""
