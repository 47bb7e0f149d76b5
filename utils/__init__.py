"""Image I/O, corruption, metrics, plotting and file helpers for the recovery."""
