"""The quality benchmark's data and split (its figures come from `make bench-quality`)."""

import numpy as np
import pandas as pd

from benchmarks.quality import NIGHTS, events_frames
from benchmarks.quality_data import Dataset, ecg5000, kdd_deepad, nsl_kdd


def test_the_copied_datasets_have_the_published_shapes():
    kdd = kdd_deepad()
    assert kdd.train.shape == (15_864, 18) and kdd.test.shape == (10_000, 18) and kdd.label.sum() == 2_000
    ecg = ecg5000(seed=0)
    assert len(ecg.train) + len(ecg.test) == 500 and ecg.label.sum() == 208 and ecg.train.shape[1] == 140
    nsl = nsl_kdd()
    assert len(nsl.test) == 22_544 and nsl.categoricals == ["protocol_type", "service", "flag"]
    assert len(nsl.measures) == 38 and not any(g.endswith("other") for g in nsl.group)  # every attack has a category


def test_events_split_nights_ids_and_point_labels():
    ds = Dataset(name="toy", train=pd.DataFrame({"x": np.arange(10.0)}), test=pd.DataFrame({"x": [0.0, 99.0, 1.0]}),
                 label=np.array([0, 1, 0], np.int8), group=np.array(["normal", "attack", "normal"]), measures=["x"])
    events, labels = events_frames(ds)
    per_night = events.groupby("event_date").size().to_dict()
    assert per_night == {NIGHTS[0]: 8, NIGHTS[1]: 2, NIGHTS[2]: 3}
    assert events["event_id"].is_unique and sorted(events.loc[events.event_date != NIGHTS[2], "x"]) == list(range(10))
    test = events[events.event_date == NIGHTS[2]]
    assert list(test["event_id"]) == ["test-0", "test-1", "test-2"]
    assert len(labels) == 1 and labels.start.iloc[0] == labels.end.iloc[0] == test["event_time"].iloc[1]
