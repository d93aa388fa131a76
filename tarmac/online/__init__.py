"""The real-time path: events, the speed layer, the online store, online reads and parity."""
