"""Runtime code shared by booking, notifier and audit, written once."""
