"""The NAB part of the quality benchmark: data, clocks and buckets, row mapping and vectorized scoring."""

import numpy as np
import pandas as pd

from adspark.core.evaluate import NAB_PROFILES, nab_point_weights, nab_probation, runs_of
from benchmarks.quality_nab import (
    STEP,
    T0,
    Scorer,
    Series,
    by_bucket,
    cadence,
    events_frame,
    labels_frame,
    load_series,
    on_own_clock,
    per_series,
    per_series_table,
    row_scores,
)


def test_the_copied_corpus_is_nabs_31_series_with_53_windows():
    series = load_series()
    assert len(series) == 31
    assert sum(len(s.value) for s in series) == 139_187
    assert sum(len(runs_of(s.labeled)) for s in series) == 53
    assert sum(not s.labeled.any() for s in series) == 5  # artificialNoAnomaly
    widths = {str(w): [s.name for s in group] for w, group in by_bucket(series).items()}
    assert {w: len(names) for w, names in widths.items()} == {
        "0 days 00:05:00": 21, "0 days 00:10:00": 2, "0 days 00:30:00": 1, "0 days 01:00:00": 7}
    assert widths["0 days 00:30:00"] == ["realKnownCause/nyc_taxi"]
    for s in series:  # every series' first scored row falls in the week from T0, at its own hour and weekday
        first = s.row_times[s.probation]
        assert T0 <= first < T0 + pd.Timedelta(days=7)
    rows = load_series(clock="rows")
    assert all(s.bucket == STEP and s.row_times[s.probation] == T0 for s in rows)


def test_a_series_keeps_its_clock_shifted_by_whole_weeks():
    stamps = pd.DatetimeIndex(pd.date_range("2014-03-05 13:00", periods=100, freq="1h"))
    moved = pd.DatetimeIndex(on_own_clock(stamps, 15))
    assert ((moved - stamps) % pd.Timedelta(days=7) == pd.Timedelta(0)).all()
    assert (moved.hour == stamps.hour).all() and (moved.dayofweek == stamps.dayofweek).all()
    assert T0 <= moved[15] < T0 + pd.Timedelta(days=7)


def test_the_bucket_is_the_narrowest_standard_width_covering_the_median_interval():
    def at(minutes):
        return pd.DatetimeIndex(pd.Timestamp("2014-01-01") + pd.to_timedelta(np.cumsum(minutes), unit="min"))

    assert cadence(at([5] * 10)) == pd.Timedelta("5min")
    assert cadence(at([1, 10, 10, 12, 9, 600])) == pd.Timedelta("10min")  # irregular: the median
    assert cadence(at([0, 60, 60, 0, 60])) == pd.Timedelta("1h")  # repeated stamps are not intervals
    assert cadence(at([1440, 1440])) == pd.Timedelta("1h")  # the widest there is


def test_every_probation_ends_at_t0_on_a_regular_grid():
    series = [Series("a/x", np.arange(1000.0), np.zeros(1000, bool)),
              Series("b/y", np.arange(40.0), np.zeros(40, bool))]
    events = events_frame(series)
    for s in series:
        t = events.loc[events.entity == s.name, "event_time"].reset_index(drop=True)
        assert t[s.probation] == T0 and (t.diff().dropna() == STEP).all()
    assert events["event_id"].is_unique and (events["event_date"] == events["event_time"].dt.date).all()


def test_labels_are_the_runs_of_labeled_rows_retimed():
    labeled = np.zeros(100, bool)
    labeled[40:50] = labeled[70:71] = True
    s = Series("c/z", np.zeros(100), labeled)
    lab = labels_frame([s])
    t0 = T0 + (40 - s.probation) * STEP
    assert len(lab) == 2 and lab.start.iloc[0] == t0 and lab.end.iloc[0] == t0 + 10 * STEP


def test_a_rows_score_is_the_window_ending_at_its_bucket():
    s = Series("d/w", np.zeros(60), np.zeros(60, bool))  # probation 9 rows
    ends = [T0 + STEP, T0 + 5 * STEP, T0 + 100 * STEP]  # rows 9, 13, out of range
    scores = pd.DataFrame({"window_end": ends, "score": [1.0, 2.0, 3.0], "threshold": 1.5,
                           "is_anomaly": [False, True, True]})
    score, th, flag = row_scores(s, scores)
    assert score[9] == 1.0 and score[13] == 2.0 and np.isnan(score[10]) and np.flatnonzero(flag).tolist() == [13]
    assert th[9] == 1.5


def test_rows_sharing_an_hourly_bucket_share_its_window_and_one_alert():
    times = (T0 + pd.to_timedelta([0, 20, 40, 60, 130, 300], unit="min")).to_numpy("datetime64[ns]")
    s = Series("h/r", np.zeros(6), np.zeros(6, bool), times, pd.Timedelta("1h"))
    hour = pd.Timedelta("1h")
    scores = pd.DataFrame({"window_end": [T0 + hour, T0 + 3 * hour], "score": [4.0, 6.0], "threshold": 1.0,
                           "is_anomaly": [True, True]})
    score, _, flag = row_scores(s, scores)
    assert score[:3].tolist() == [4.0] * 3 and np.isnan(score[3]) and score[4] == 6.0 and np.isnan(score[5])
    sc = Scorer.of(s)
    assert np.flatnonzero(sc.onsets(flag)).tolist() == [0, 4]  # the bucket's three rows are one alert
    assert np.flatnonzero(sc.onsets(flag, cooldown=3600)).tolist() == [0]  # 2:00 is within an hour of 1:00


def _reference_raw(flags, windows, profile):
    """NAB's scoring as a plain loop: best detection per window, every other detection an FP."""
    win, value = nab_point_weights(len(flags), windows)
    best, fp = {}, 0.0
    for i in np.flatnonzero(flags):
        if i < nab_probation(len(flags)):
            continue
        if win[i] >= 0:
            best[win[i]] = max(best.get(win[i], -np.inf), value[i] * profile["tp"])
        else:
            fp += value[i] * profile["fp"]
    return sum(best.values()) + fp - (len(windows) - len(best)) * profile["fn"]


def test_vectorized_scoring_equals_the_reference_nab_score():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(50, 400))
        labeled = np.zeros(n, bool)
        for start in rng.choice(n, size=int(rng.integers(0, 4)), replace=False):
            labeled[start:start + int(rng.integers(1, 30))] = True
        s = Series("e/v", np.zeros(n), labeled)
        flags = rng.random(n) < rng.choice([0.0, 0.01, 0.2])
        for profile in NAB_PROFILES.values():
            expected = _reference_raw(flags, runs_of(labeled), profile)
            assert np.isclose(Scorer.of(s).raw(flags, profile), expected)


def test_onsets_keep_the_first_row_of_each_run():
    sc = Scorer.of(Series("i/q", np.zeros(9), np.zeros(9, bool)))
    assert np.flatnonzero(sc.onsets(np.array([0, 1, 1, 0, 1, 0, 0, 1, 1], bool))).tolist() == [1, 4, 7]
    assert np.flatnonzero(sc.onsets(np.array([0, 1, 1, 0, 1, 0, 0, 1, 1], bool), cooldown=300)).tolist() == [1, 7]


def test_the_rolling_baseline_sees_a_spike_the_static_one_sees_a_drift():
    from benchmarks.quality_nab import rolling_z, static_z

    v = np.r_[np.sin(np.arange(600) / 10.0), np.sin(np.arange(600, 1200) / 10.0) + np.linspace(0, 50, 600)]
    v[900] += 20.0
    s = Series("f/u", v, np.zeros(len(v), bool))
    assert int(np.nanargmax(rolling_z(s)[700:])) + 700 == 900
    assert static_z(s)[-1] > static_z(s)[900]  # the static one ranks the drifted tail above the spike


def test_per_series_counts_caught_windows_and_false_alerts_after_the_probation():
    labeled = np.zeros(200, bool)
    labeled[100:110] = labeled[150:160] = True
    s = Series("g/t", np.zeros(200), labeled)  # probation 30 rows
    alerts = np.zeros(200, bool)
    alerts[[5, 40, 102, 105, 170]] = True  # in probation (not scored), false, caught twice, false
    assert per_series([s], [Scorer.of(s)], [alerts]) == {"g/t": [2, 1, 2]}
    counts = {"a": {"x/1": [2, 1, 3], "x/2": [0, 0, 1]}, "b": {"x/1": [2, 2, 0], "x/2": [0, 0, 0]}}
    assert per_series_table(counts) == [["series", "windows", "a", "b"], ["x/1", "2", "1 / 3", "2 / 0"],
                                        ["x/2", "0", "0 / 1", "0 / 0"], ["total", "2", "1 / 4", "2 / 0"]]
