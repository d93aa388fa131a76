"""Tarmac's library: the domain code the Dagster definitions, the tools and the serving API are
built from. Nothing here imports a Dagster definition (assets, checks, sensors, resources)."""
