"""Training, the model registry, the promotion gate and model monitoring."""
