"""Commands above the Dagster definitions: the CLI, the headless backfill, its supervisor, the
landing simulator, the replay and the `dagster dev` harness."""
