"""booking: the portal and admin API for job requests, and the outbox relay of their events."""
