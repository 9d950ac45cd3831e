import numpy as np

from active.data.ap import ImageResult
from active.evaluation.report import operating_point


def test_operating_point_counts_confusions():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 60, 60]], float)
    r = ImageResult(
        gt, np.array([0, 0, 1]),
        boxes=np.array([[0, 0, 10, 10], [40, 40, 60, 60], [80, 80, 90, 90], [20, 20, 30, 30]],
                       float),
        scores=np.array([0.9, 0.8, 0.7, 0.1]), labels=np.array([0, 0, 1, 0]),
    )
    op = operating_point([r], ("sperm", "impurity"), score_threshold=0.25)
    m = np.array(op["confusion"]["matrix"])
    # rows gt sperm, impurity, background; cols pred sperm, impurity, missed
    np.testing.assert_array_equal(m, [[1, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert op["per_class"]["sperm"]["precision"] == 0.5
    assert op["per_class"]["sperm"]["recall"] == 0.5
    assert op["per_class"]["impurity"]["recall"] == 0.0
