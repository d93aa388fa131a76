"""Sensors that drive the pipeline from the landing zone (see README)."""

all_sensors: list = []
