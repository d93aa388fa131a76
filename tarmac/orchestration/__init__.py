"""The Dagster instance as Tarmac runs it: its storage, runs whose process died, run history."""
