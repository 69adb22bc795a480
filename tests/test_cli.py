import json


from oipwidgets import cli
from oipwidgets.models.idx import write_idx
from oipwidgets.models import load_model

from .conftest import bar_images


def _idx_dir(tmp_path):
    x, y = bar_images(128, seed=1)
    xt, yt = bar_images(64, seed=2)
    d = tmp_path / "data"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", x)
    write_idx(d / "train-labels-idx1-ubyte.gz", y)
    write_idx(d / "t10k-images-idx3-ubyte.gz", xt)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", yt)
    return d


def test_train_writes_model_and_card(tmp_path, capsys):
    data = _idx_dir(tmp_path)
    out = tmp_path / "models" / "bars.keras"
    argv = ["train", "--dataset", "mnist", "--data", str(data), "--epochs", "4", "--batch-size", "16", "--out", str(out), "--verbose", "0"]
    assert cli.main(argv) == 0
    card = json.loads((tmp_path / "models" / "bars.card.json").read_text())
    assert card["train_images"] == 128 and card["test_images"] == 64
    assert card["command"] == "oipwidgets " + " ".join(argv)
    assert card["training"]["epochs"] == 4
    model = load_model(out)
    assert model.get_layer("Conv2D_3").output.shape[-1] == 64
    assert "Test accuracy on 64 images" in capsys.readouterr().out
    # the model classifies what it was trained on far above chance
    assert card["test_accuracy"] > 0.8

    assert cli.main(["evaluate", "--model", str(out), "--data", str(data)]) == 0
    assert "on the 64 test images" in capsys.readouterr().out


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "mnist", "--data", str(tmp_path), "--out", str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "train-images-idx3-ubyte" in err
    assert cli.main(["evaluate", "--model", str(tmp_path / "missing.keras")]) == 2
    assert "missing.keras" in capsys.readouterr().err


def test_evaluate_default_model_on_samples(capsys):
    assert cli.main(["evaluate", "--model", "mnist"]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("accuracy ")[1].split()[0])
    assert accuracy >= 0.95
