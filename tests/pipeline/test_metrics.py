import pytest
import torch

from pipeline.metrics import accuracy, confusion_matrix, macro_f1


def test_confusion_accuracy_and_macro_f1_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(preds, labels, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert accuracy(cm) == pytest.approx(4 / 6)
    # F1 per class: c0 2*1/(2+1+1)=0.5, c1 2*2/(4+1+0)=0.8, c2 2*1/(2+0+1)=2/3
    assert macro_f1(cm) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_summed_confusion_matrices_equal_the_whole():
    labels = torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(1))
    preds = torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(2))
    whole = confusion_matrix(preds, labels, 4)
    parts = confusion_matrix(preds[0::2], labels[0::2], 4) + confusion_matrix(preds[1::2], labels[1::2], 4)
    assert torch.equal(whole, parts)
