"""Data-quality contracts (Pandera), the checks' evaluation, their statistics and history."""

import warnings

# Where pyspark is installed (the spark extra), importing pandera imports pyspark.pandas, which
# warns on every import that it does not support pandas 3. Tarmac never uses pandas on Spark (its
# Spark engine is dbt's), so the warning would only fill every step's log with a false alarm.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
