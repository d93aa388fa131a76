"""A week of real data materialized in-process: conservation, keys and UTC times."""

from tests.conftest import table_hash

WEEK = ("2013-03-07", "2013-03-13")


def test_week_conserves_rows_and_keys(real_days):
    query = real_days.query
    per_day = query(
        "select landing_date, dataset, bronze_rows, silver_rows, quarantined_rows, duplicates_dropped "
        "from silver.load_audit where landing_date between ? and ? order by all",
        list(WEEK),
    )
    assert len(per_day) == 14  # 7 days x (flights, weather)
    for day, dataset, bronze, silver, quarantined, dropped in per_day:
        assert bronze > 0, (day, dataset)
        assert bronze == silver + quarantined + dropped, (day, dataset)
    (flights,) = query("select count(*) from bronze.flights where landing_date between ? and ?", list(WEEK))[0]
    assert query(
        "select count(*), count(distinct flight_id) from silver.flights where flight_date between ? and ?", list(WEEK)
    )[0] == (flights, flights)
    assert query("select count(*) from gold.flight_features where flight_date between ? and ?", list(WEEK))[0][0] == flights
    # and over every shared day: one gold row per silver flight, whatever the order of the hash
    (all_flights,) = query("select count(*) from silver.flights")[0]
    assert table_hash(real_days.paths, "gold.flight_features")[0] == all_flights
