"""Machine learning on the gold features."""
