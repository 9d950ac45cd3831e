import pytest
from hypothesis import given
from hypothesis import strategies as st

from active.data.splits import PARTS, SplitPlan, apply_fold, kfold_split, ratio_counts, ratio_split
from active.errors import DataError

videos_st = st.lists(st.text("ABCDEFGH0123_", min_size=1, max_size=6), min_size=3, max_size=40,
                     unique=True)


def _assert_partition(plan):
    for fold in plan.folds:
        seen = [v for p in PARTS for v in getattr(fold, p)]
        assert sorted(seen) == sorted(plan.videos)
        assert len(set(seen)) == len(seen)


@given(videos_st, st.integers(0, 10_000))
def test_ratio_split_is_a_partition_and_deterministic(videos, seed):
    plan = ratio_split(videos, (6, 2, 2), seed)
    _assert_partition(plan)
    assert plan == ratio_split(list(reversed(videos)), (6, 2, 2), seed)
    f = plan.folds[0]
    assert f.train and f.val and f.test


@given(videos_st, st.integers(0, 1000))
def test_kfold_tests_every_video_once(videos, seed):
    k = min(5, len(videos))
    plan = kfold_split(videos, k=k, seed=seed)
    _assert_partition(plan)
    tested = [v for f in plan.folds for v in f.test]
    assert sorted(tested) == sorted(set(videos))


def test_five_folds_of_ten_videos_are_6_2_2():
    plan = kfold_split([f"v{i}" for i in range(10)], k=5, seed=3)
    assert {(len(f.train), len(f.val), len(f.test)) for f in plan.folds} == {(6, 2, 2)}


def test_ratio_counts():
    assert ratio_counts(101, (6, 2, 2)) == [61, 20, 20]
    assert ratio_counts(3, (6, 2, 2)) == [1, 1, 1]
    assert sum(ratio_counts(7, (1, 1, 1))) == 7


def test_leave_one_video_out_on_four_videos():
    plan = kfold_split(["S_0001", "S_0002", "S_0004", "S_0005"], k=4, seed=0)
    assert all(len(f.test) == 1 and len(f.val) == 1 and len(f.train) == 2 for f in plan.folds)


def test_seed_changes_split():
    vids = [f"v{i}" for i in range(20)]
    assert ratio_split(vids, seed=1) != ratio_split(vids, seed=2)


def test_save_load_and_apply(tmp_path, records):
    plan = ratio_split({r.video_id for r in records} | {"V_0003"}, (1, 1, 1), seed=0)
    path = tmp_path / "split.json"
    plan.save(path)
    assert SplitPlan.load(path) == plan
    with_all = [*records]
    parts = apply_fold(with_all, plan.folds[0])
    assert sum(len(p) for p in parts.values()) == len(records)
    for part, recs in parts.items():
        assert {r.video_id for r in recs} <= set(getattr(plan.folds[0], part))


def test_split_errors(tmp_path, records):
    plan = ratio_split(["V_0001"], (1, 0, 0))
    with pytest.raises(DataError, match="videos not in the split: V_0002"):
        apply_fold(records, plan.folds[0])
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "ratio", "seed": 0, "videos": ["a", "b"], "folds": '
                   '[{"train": ["a", "b"], "val": ["a"], "test": []}]}')
    with pytest.raises(DataError, match="bad.json: fold 0 does not put every video"):
        SplitPlan.load(bad)
