"""The feature registry and the point-in-time offline store."""
