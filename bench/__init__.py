"""`make bench`: the parts' limits, the platform end to end at fixed offered rates, and a synchronous design."""
