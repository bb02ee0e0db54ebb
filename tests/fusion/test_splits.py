import numpy as np
import pytest

from avemo.errors import AvemoError
from avemo.fusion.splits import SplitError, actor_folds, explicit_folds, folds_from_groups, random_clip_split


@pytest.mark.parametrize("n_actors, n_folds, first", [(24, 6, 1), (91, 5, 1001)])
def test_no_actor_has_two_roles_and_everyone_is_tested_once(n_actors, n_folds, first):
    actors = np.repeat(np.arange(first, first + n_actors), 3)
    folds = actor_folds(actors, n_folds)
    assert len(folds) == n_folds
    tested = []
    for fold in folds:
        test, val, train = set(fold.test_actors), set(fold.val_actors), set(fold.train_actors)
        assert not (test & val) and not (test & train) and not (val & train)
        assert test | val | train == set(actors.tolist())
        assert set(actors[fold.test]) == test and set(actors[fold.val]) == val and set(actors[fold.train]) == train
        tested += fold.test_actors
    assert sorted(tested) == sorted(set(actors.tolist()))


def test_ravdess_folds_are_four_consecutive_actors():
    folds = actor_folds(np.arange(1, 25), 6)
    assert [f.test_actors for f in folds] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16],
                                              [17, 18, 19, 20], [21, 22, 23, 24]]
    assert folds[0].val_actors == [5, 6, 7, 8] and folds[-1].val_actors == [1, 2, 3, 4]


def test_explicit_folds_refuse_overlap():
    actors = np.arange(1, 7)
    (fold,) = folds_from_groups(actors, [([1, 2], [3])])
    assert fold.train_actors == [4, 5, 6]
    with pytest.raises(SplitError, match="speakers \\[2\\] are both test and validation"):
        folds_from_groups(actors, [([1, 2], [2, 3])])


def test_explicit_folds_refuse_speakers_the_cache_lacks():
    with pytest.raises(SplitError, match=r"fold 1: speakers \[7, 9\] have no clip in the cache"):
        folds_from_groups(np.arange(1, 7), [([1, 9], [7])])


def test_random_clip_split_is_labelled_and_partitions_clips():
    fold = random_clip_split(100, seed=0)
    assert fold.protocol == "random-clips" and len(fold.test) == 10
    assert sorted(fold.train + fold.val + fold.test) == list(range(100))


def test_too_few_speakers_for_the_folds():
    with pytest.raises(SplitError, match="the cache has 2 actor") as caught:
        actor_folds(np.array([1, 2]), 3)
    assert isinstance(caught.value, AvemoError) and isinstance(caught.value, ValueError)  # old callers still catch it
    with pytest.raises(SplitError, match="--n-folds 5: the cache has 4 actors.*use --n-folds 4"):
        actor_folds(np.arange(1, 5), 5)


def test_a_manifest_needs_three_folds():
    folds = explicit_folds(np.array([1, 1, 2, 2, 3, 3]), np.arange(6))
    assert [(f.test, f.val, f.train) for f in folds] == [([0, 1], [2, 3], [4, 5]), ([2, 3], [4, 5], [0, 1]),
                                                        ([4, 5], [0, 1], [2, 3])]
    with pytest.raises(SplitError, match="names 2 fold"):
        explicit_folds(np.array([1, 1, 2, 2]), np.arange(4))
