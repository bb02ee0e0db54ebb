import numpy as np
import pytest

from avemo.fusion.splits import actor_folds, folds_from_groups, random_clip_split


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
    with pytest.raises(ValueError, match="both test and validation"):
        folds_from_groups(actors, [([1, 2], [2, 3])])


def test_random_clip_split_is_labelled_and_partitions_clips():
    fold = random_clip_split(100, seed=0)
    assert fold.protocol == "random-clips" and len(fold.test) == 10
    assert sorted(fold.train + fold.val + fold.test) == list(range(100))


def test_too_few_actors_for_the_folds():
    with pytest.raises(ValueError, match="actors"):
        actor_folds(np.array([1, 2]), 3)
