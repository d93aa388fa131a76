"""Dagster resources: the only objects assets, checks and sensors receive their services from."""
