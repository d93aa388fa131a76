"""Data-quality contracts (Pandera), the checks' evaluation, their statistics and history."""
