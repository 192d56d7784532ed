"""audit: the client LOGS, one timestamped entry per job request event."""
