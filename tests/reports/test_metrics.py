import numpy as np
import pytest

from avemo.reports.metrics import fold_metrics, summarise


def test_metrics_on_a_hand_made_fold():
    labels = np.array([0, 0, 0, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 2, 0])
    m = fold_metrics(labels, pred, classes=[0, 1, 2, 3])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["uar"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m["per_class"]["neutral"]["recall"] == pytest.approx(2 / 3)
    f1 = [2 * 2 / (2 * 2 + 1 + 1), 2 * 1 / (2 + 1), 2 * 1 / (2 + 1)]  # 2TP / (2TP + FP + FN) per present class
    assert m["macro_f1"] == pytest.approx(np.mean(f1))


def test_a_class_absent_from_the_fold_does_not_drag_macro_f1():
    labels = np.array([0, 1, 2])
    m = fold_metrics(labels, labels.copy(), classes=[0, 1, 2, 3, 4, 5, 6, 7])
    assert m["uar"] == 1.0 and m["macro_f1"] == 1.0


def test_summary_is_mean_and_std_over_folds():
    s = summarise([{"accuracy": 0.5, "uar": 0.4, "macro_f1": 0.3}, {"accuracy": 0.7, "uar": 0.6, "macro_f1": 0.5}])
    assert s["accuracy"] == {"mean": pytest.approx(0.6), "std": pytest.approx(0.1)}
