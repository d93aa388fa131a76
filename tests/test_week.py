"""A week of real data materialized in-process: conservation, keys and UTC times."""

from tests.conftest import table_hash


def test_week_conserves_rows_and_keys(paths, land, run_days, query):
    land("2013-03-07", "2013-03-13")
    run_days("2013-03-07", "2013-03-13")

    per_day = query(
        "select landing_date, dataset, bronze_rows, silver_rows, quarantined_rows, duplicates_dropped "
        "from silver.load_audit order by all"
    )
    assert len(per_day) == 14  # 7 days x (flights, weather)
    for day, dataset, bronze, silver, quarantined, dropped in per_day:
        assert bronze > 0, (day, dataset)
        assert bronze == silver + quarantined + dropped, (day, dataset)
    (flights,) = query("select count(*) from bronze.flights")[0]
    assert query("select count(*), count(distinct flight_id) from silver.flights")[0] == (flights, flights)
    assert query("select count(*) from gold.flight_features")[0][0] == flights
    assert table_hash(paths, "gold.flight_features")[0] == flights
