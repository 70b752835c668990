"""The discretize summary's note on buckets without events (pure, no Spark)."""

from adspark.pipeline.discretize import SPARSE_BUCKETS, fill_note


def test_the_note_counts_buckets_with_events_and_stays_quiet_when_most_hold_some():
    assert fill_note(100, 85) == " (85 with events)"
    assert fill_note(100, int(SPARSE_BUCKETS * 100)) == " (25 with events)"  # at the bound: no hint
    assert fill_note(0, 0) == ""


def test_mostly_empty_buckets_suggest_the_readings_cadence():
    # an hourly sensor in 5-minute buckets: 1 bucket in 12 holds its reading
    note = fill_note(1200, 100)
    assert note.startswith(" (100 with events); 92% of the buckets hold no event")
    assert "discretize.bucket" in note
