import torch

from ee_asr.train.checkpoint import CheckpointManager


def history(*rows):
    return [{"epoch": e, "valid": {"loss": loss, "cer_exit12": cer}} for e, loss, cer in rows]


def test_best_epochs_by_loss_or_cer(tmp_path):
    h = history((1, 10.0, 90.0), (2, 8.0, 50.0), (3, 9.0, 30.0), (4, 9.5, 20.0))
    assert CheckpointManager(tmp_path, 2).best_epochs(h) == [2, 3]
    assert CheckpointManager(tmp_path, 2, "cer_exit12").best_epochs(h) == [4, 3]


def test_average_of_the_best_and_pruning(tmp_path):
    ckpt = CheckpointManager(tmp_path, 2)
    h = []
    for epoch, loss, value in ((1, 3.0, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0)):
        h += history((epoch, loss, 0.0))
        ckpt.save_epoch(epoch, {"w": torch.tensor([value])}, {"epoch": epoch}, h)
    assert not (tmp_path / "checkpoints" / "epoch1.pth").exists()  # neither best nor latest
    assert ckpt.average_best(h, tmp_path / "model.pth") == [2, 3]
    assert torch.load(tmp_path / "model.pth")["w"].item() == 3.0
