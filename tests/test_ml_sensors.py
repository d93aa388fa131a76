"""The ML sensors' decisions, as pure functions: what to score, when to retrain and on which days."""

from sensors.ml import decayed_days, retraining_split, stale_days


def test_scoring_targets_days_whose_features_are_newer_than_their_scores():
    features = {"2013-03-01": 10, "2013-03-02": 20, "2013-03-03": 30}
    scored = {"2013-03-01": 15, "2013-03-02": 12}
    assert stale_days(features, scored, rescore_all=False) == {"2013-03-02", "2013-03-03"}
    # a new champion rescores every day that has features
    assert stale_days(features, dict.fromkeys(features, 99), rescore_all=True) == set(features)
    assert stale_days(features, dict.fromkeys(features, 99), rescore_all=False) == set()


def test_scoring_targets_days_recorded_as_not_scored_once_a_champion_exists():
    # a backfill without a champion recorded 03-02 and 03-03 as not scored, after their features
    features = {"2013-03-01": 10, "2013-03-02": 20, "2013-03-03": 30}
    scored = {"2013-03-01": 15, "2013-03-02": 25, "2013-03-03": 35}
    not_scored = {"2013-03-02", "2013-03-03"}
    assert stale_days(features, scored, rescore_all=False, not_scored=not_scored) == not_scored
    # a day without features yet waits for them, recorded or not
    assert stale_days(features, scored, rescore_all=False, not_scored={"2013-03-04"}) == set()
    # days never materialized at all (no champion, no backfill of predictions) are stale too
    assert stale_days(features, {}, rescore_all=False) == set(features)


def test_retraining_counts_recent_errors_of_the_current_champion_only():
    evaluations = {
        "2013-12-25": (False, "ERROR", "3"),
        "2013-12-26": (False, "WARN", "3"),  # a warning is not decay
        "2013-12-27": (False, "ERROR", "2"),  # scored by an earlier champion
        "2013-12-28": (True, "ERROR", "3"),
        "2013-12-29": (False, "ERROR", "3"),
        "2013-12-30": (False, "ERROR", "3"),
    }
    assert decayed_days(evaluations, "3", window_days=14) == ["2013-12-25", "2013-12-29", "2013-12-30"]
    # only the most recent days count
    assert decayed_days(evaluations, "3", window_days=2) == ["2013-12-29", "2013-12-30"]
    assert decayed_days(evaluations, "4", window_days=14) == []


def test_retraining_split_ends_at_the_last_labelled_day():
    split = retraining_split("2013-12-31", test_days=61, validate_days=31)
    assert split == {
        "train_start": "2013-01-01", "train_end": "2013-09-30",
        "validate_start": "2013-10-01", "validate_end": "2013-10-31",
        "test_start": "2013-11-01", "test_end": "2013-12-31",
    }
    later = retraining_split("2013-06-30", test_days=14, validate_days=7)
    assert (later["validate_start"], later["test_start"], later["train_end"]) == ("2013-06-10", "2013-06-17", "2013-06-09")
