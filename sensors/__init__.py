"""Sensors: the alert sink for failed checks and runs (more arrive with the sensors issue)."""

from sensors.alerts import alert_sensor

all_sensors = [alert_sensor]
