"""Scoring picks against a catalogue's reference picks (``seiscontrast score-picks``), computed by hand."""

import numpy as np
import pandas as pd
import pytest
from obspy import UTCDateTime

from seiscontrast.catalog_scores import ScoreConfig, score_picks

T = UTCDateTime(2023, 6, 1)


def _coverage():
    rows = [("XX", "A", "HH"), ("XX", "A", "HN"), ("XX", "B", "EH")]
    return pd.DataFrame([dict(network=n, station=s, instrument=i, start=T, end=T + 3600) for n, s, i in rows])


def _references():
    return pd.DataFrame([
        dict(network="XX", station="A", channel="", phase="P", time=T + 100),      # both of A's instruments
        dict(network="XX", station="A", channel="HHN", phase="S", time=T + 108),   # A's broadband only
        dict(network="XX", station="B", channel="", phase="P", time=T + 50),
        dict(network="XX", station="C", channel="", phase="P", time=T + 50),       # no data: not scored
    ])


def _picks():
    rows = [("A", "HHZ", "P", 100.05), ("A", "HHN", "S", 108.3), ("A", "HNZ", "P", 100.4),
            ("A", "HNN", "S", 130.0),    # extra: no S reference on the accelerometer
            ("A", "HHZ", "P", 500.0),    # farther than the margin from A's references: not scored
            ("B", "EHZ", "P", 50.15), ("B", "EHZ", "P", 50.2)]   # one to one: the second is extra
    return pd.DataFrame([dict(network="XX", station=s, location="", channel=c, phase=p, time=str(T + t))
                         for s, c, p, t in rows])


def test_scores_by_phase_and_instrument_match_hand_computation():
    scores = score_picks(_picks(), _references(), _coverage(), ScoreConfig((0.1, 0.2, 0.5), margin=30.0))
    s = scores.summary[scores.summary.network == "all"].set_index(["instrument", "phase"])
    p = s.loc[("all", "P")]
    assert p.references == 3
    assert (p["recall@0.1s"], p["recall@0.2s"], p["recall@0.5s"]) == pytest.approx((1 / 3, 2 / 3, 1.0))
    assert p.MAE_s == pytest.approx((0.05 + 0.4 + 0.15) / 3) and p.bias_s == pytest.approx(0.2)
    assert p.extra_picks == 1
    sp = s.loc[("all", "S")]
    assert sp.references == 1 and sp["recall@0.2s"] == 0 and sp["recall@0.5s"] == 1 and sp.extra_picks == 1
    assert s.loc[("HN", "P")]["recall@0.1s"] == 0 and s.loc[("HN", "P")]["recall@0.5s"] == 1
    assert s.loc[("HN", "S")].references == 0 and s.loc[("HN", "S")].extra_picks == 1
    assert s.loc[("EH", "P")].extra_picks == 1
    assert scores.no_data.station.tolist() == ["C"]
    assert sorted(scores.references.instrument) == ["EH", "HH", "HH", "HN"]
    assert set(scores.summary.network) == {"all"}   # one network: no rows per network


def test_several_networks_get_rows_of_their_own():
    refs, picks, cov = _references(), _picks(), _coverage()
    for t in (refs, picks, cov):
        t.loc[t.station == "B", "network"] = "YY"
    s = score_picks(picks, refs, cov).summary.set_index(["network", "instrument", "phase"])
    assert s.loc[("YY", "all", "P")].references == 1 and s.loc[("YY", "all", "P")].extra_picks == 1
    assert s.loc[("XX", "all", "P")].references == 2 and s.loc[("XX", "all", "P")]["recall@0.5s"] == 1
    assert s.loc[("all", "all", "P")].references == 3


def test_without_a_margin_every_pick_of_a_scored_instrument_counts():
    scores = score_picks(_picks(), _references(), _coverage(), ScoreConfig(margin=None))
    s = scores.summary.set_index(["instrument", "phase"])
    assert s.loc[("all", "P")].extra_picks == 2 and s.loc[("HH", "P")].extra_picks == 1


def test_picks_without_channel_codes_count_for_every_instrument_with_data():
    picks = _picks().drop(columns=["channel"]).iloc[[0, 5]]      # A's P at 100.05 and B's P at 50.15
    s = score_picks(picks, _references(), _coverage()).summary.set_index(["instrument", "phase"])
    assert s.loc[("HH", "P")]["recall@0.1s"] == 1 and s.loc[("HN", "P")]["recall@0.1s"] == 1
    assert s.loc[("EH", "P")]["recall@0.2s"] == 1 and s.loc[("all", "P")].extra_picks == 0


def test_no_picks_at_all_scores_zero_recall():
    empty = _picks().iloc[:0]
    scores = score_picks(empty, _references(), _coverage())
    assert scores.summary["recall@0.5s"].fillna(0).max() == 0 and scores.summary.extra_picks.sum() == 0
    assert np.isnan(scores.summary.set_index(["instrument", "phase"]).loc[("all", "P")].MAE_s)


def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match="tolerances"):
        ScoreConfig((0.0, 0.5))
    with pytest.raises(ValueError, match="margin"):
        ScoreConfig(margin=-1.0)


def test_reference_windows_merge_where_they_overlap():
    from seiscontrast.catalog_scores import reference_windows

    spans = reference_windows([T + 100, T + 10, T + 40, T + 300], margin=20.0)
    assert [(a - T, b - T) for a, b in spans] == [(-10, 60), (80, 120), (280, 320)]


def test_threshold_table_picks_the_best_f1_per_phase():
    from seiscontrast.catalog_scores import threshold_table

    picks = _picks()
    # at 0.5 the duplicate B pick and the accelerometer's S are gone; at 0.7 only the broadband picks remain
    swept = {0.3: picks, 0.5: picks.drop(index=[3, 6]), 0.7: picks.drop(index=[2, 3, 5, 6])}
    table, best = threshold_table(swept, _references(), _coverage(), ScoreConfig())
    p = table[table.phase == "P"].set_index("threshold")
    assert p.loc[0.3, "recall"] == 1 and p.loc[0.3, "precision"] == pytest.approx(3 / 4)
    assert p.loc[0.5, "precision"] == 1 and p.loc[0.7, "recall"] == pytest.approx(1 / 3)
    assert best == {"P": 0.5, "S": 0.5}
