"""notifier: emails the client (admin inbox in CC) and posts HOME notices when a job request is cancelled."""
