"""Sensors: landing files drive runs, changes propagate downstream, freshness is watched, and every
failure reaches the alert sink; the champion scores what changed, and decay triggers retraining; runs
whose process died are released."""

from sensors.alerts import alert_sensor
from sensors.freshness import partition_freshness_sensor
from sensors.held_back import held_back_days_sensor
from sensors.landing import landing_file_sensor
from sensors.ml import batch_scoring_sensor, model_retraining_sensor
from sensors.recovery import dead_run_sensor
from sensors.refresh import downstream_refresh_sensor

all_sensors = [
    landing_file_sensor,
    downstream_refresh_sensor,
    held_back_days_sensor,
    partition_freshness_sensor,
    alert_sensor,
    batch_scoring_sensor,
    model_retraining_sensor,
    dead_run_sensor,
]
