"""Tests for oipwidgets.models.datasets on tiny synthetic IDX sets in temp dirs (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oipwidgets.models import datasets
from oipwidgets.models.datasets import (
    CLASS_NAMES,
    DatasetError,
    DatasetNotFoundError,
    find_idx_dir,
    idx_files_in,
    load_fashion_mnist,
    load_idx_dir,
    load_mnist,
    samples,
    validate_split,
)
from oipwidgets.models.idx import IDXError, write_idx

ENV_VARS = ("OIPWIDGETS_MNIST_DIR", "OIPWIDGETS_FASHION_MNIST_DIR")


class _NoNetwork(Exception):
    pass


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """No env vars, no Debian dir, and a keras loader that fails like an offline download."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian-dir")
    calls: list[str] = []

    def offline(name: str):
        calls.append(name)
        raise _NoNetwork(f"URL fetch failure for {name}: no internet")

    monkeypatch.setattr(datasets, "_keras_loader", offline)
    return calls


def make_set(
    directory: Path,
    n_train: int = 5,
    n_test: int = 3,
    gz: bool = True,
    seed: int = 0,
    n_train_labels: int | None = None,
) -> dict[str, np.ndarray]:
    """Write a tiny MNIST-like set into ``directory`` and return the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    n_train_labels = n_train if n_train_labels is None else n_train_labels
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train_labels, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, arr in arrays.items():
        write_idx(directory / (stem + (".gz" if gz else "")), arr)
    return arrays


def assert_loaded(result, arrays: dict[str, np.ndarray]) -> None:
    (x_train, y_train), (x_test, y_test) = result
    for got, stem in [
        (x_train, "train-images-idx3-ubyte"),
        (y_train, "train-labels-idx1-ubyte"),
        (x_test, "t10k-images-idx3-ubyte"),
        (y_test, "t10k-labels-idx1-ubyte"),
    ]:
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[stem])
    assert x_train.shape[1:] == (28, 28) and y_train.ndim == 1


# ------------------------------------------------------------------ loading from dirs


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_load_from_path_argument(tmp_path: Path, gz: bool, loader, isolated) -> None:
    arrays = make_set(tmp_path / "data", gz=gz)
    assert_loaded(loader(tmp_path / "data"), arrays)
    assert_loaded(loader(str(tmp_path / "data")), arrays)
    assert isolated == []  # keras never called


def test_path_argument_wins_over_env_var(tmp_path: Path, monkeypatch) -> None:
    from_path = make_set(tmp_path / "arg", n_train=4, seed=1)
    make_set(tmp_path / "env", n_train=6, seed=2)
    monkeypatch.setenv("OIPWIDGETS_MNIST_DIR", str(tmp_path / "env"))
    assert_loaded(load_mnist(path=tmp_path / "arg"), from_path)


@pytest.mark.parametrize(
    ("loader", "var"),
    [(load_mnist, "OIPWIDGETS_MNIST_DIR"), (load_fashion_mnist, "OIPWIDGETS_FASHION_MNIST_DIR")],
)
def test_env_var_used_when_path_none(tmp_path: Path, monkeypatch, loader, var, isolated) -> None:
    arrays = make_set(tmp_path / "env", gz=False)
    monkeypatch.setenv(var, str(tmp_path / "env"))
    assert_loaded(loader(), arrays)
    assert isolated == []


def test_mnist_ignores_fashion_env_var(tmp_path: Path, monkeypatch) -> None:
    make_set(tmp_path / "fashion")
    monkeypatch.setenv("OIPWIDGETS_FASHION_MNIST_DIR", str(tmp_path / "fashion"))
    with pytest.raises(DatasetNotFoundError, match=r"\$OIPWIDGETS_MNIST_DIR: not set"):
        load_mnist()


def test_debian_dir_used_for_fashion_only(tmp_path: Path, monkeypatch, isolated) -> None:
    arrays = make_set(tmp_path / "debian")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    assert_loaded(load_fashion_mnist(), arrays)
    with pytest.raises(DatasetNotFoundError):
        load_mnist()
    assert isolated == ["mnist"]


def test_env_var_wins_over_debian_dir(tmp_path: Path, monkeypatch) -> None:
    make_set(tmp_path / "debian", n_train=2, seed=3)
    from_env = make_set(tmp_path / "env", n_train=7, seed=4)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    monkeypatch.setenv("OIPWIDGETS_FASHION_MNIST_DIR", str(tmp_path / "env"))
    assert_loaded(load_fashion_mnist(), from_env)


def test_broken_env_var_falls_through_to_debian_dir(tmp_path: Path, monkeypatch) -> None:
    arrays = make_set(tmp_path / "debian")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    monkeypatch.setenv("OIPWIDGETS_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    assert_loaded(load_fashion_mnist(), arrays)


def test_explicit_path_missing_files_errors_at_once(tmp_path: Path, monkeypatch, isolated) -> None:
    make_set(tmp_path / "env")
    monkeypatch.setenv("OIPWIDGETS_MNIST_DIR", str(tmp_path / "env"))
    incomplete = tmp_path / "incomplete"
    make_set(incomplete)
    (incomplete / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(path=incomplete)
    message = str(info.value)
    assert str(incomplete) in message
    assert "t10k-labels-idx1-ubyte[.gz]" in message
    assert "train-images" not in message.split("must be")[0]  # only the missing one listed
    assert isolated == []  # no fallback to keras


def test_explicit_path_nonexistent_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist") as info:
        load_fashion_mnist(path=tmp_path / "nowhere")
    assert "nowhere" in str(info.value)


def test_nothing_found_lists_every_place(tmp_path: Path, monkeypatch, isolated) -> None:
    (tmp_path / "empty-env").mkdir()
    monkeypatch.setenv("OIPWIDGETS_FASHION_MNIST_DIR", str(tmp_path / "empty-env"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value.__cause__, _NoNetwork)
    # every place, and why it failed
    assert "path argument: not given" in message
    assert f"$OIPWIDGETS_FASHION_MNIST_DIR={tmp_path / 'empty-env'}: missing" in message
    assert f"{tmp_path / 'no-debian-dir'}: directory does not exist" in message
    assert "keras.datasets.fashion_mnist.load_data(): failed" in message
    assert "no internet" in message
    # how to get the data
    assert "load_fashion_mnist(path=DIR)" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "internet" in message
    assert isolated == ["fashion_mnist"]


def test_nothing_found_mnist_message(monkeypatch) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist()
    message = str(info.value)
    assert "$OIPWIDGETS_MNIST_DIR: not set" in message
    assert "keras.datasets.mnist.load_data(): failed" in message
    assert "OIPWIDGETS_MNIST_DIR=DIR" in message
    assert "dataset-fashion-mnist" not in message


def test_keras_fallback_result_is_validated(monkeypatch) -> None:
    x = np.zeros((2, 28, 28), np.uint8)
    y = np.array([1, 2], np.uint8)
    monkeypatch.setattr(datasets, "_keras_loader", lambda name: ((x, y), (x, y)))
    (x_train, y_train), _ = load_mnist()
    assert x_train.shape == (2, 28, 28) and y_train.tolist() == [1, 2]

    monkeypatch.setattr(datasets, "_keras_loader", lambda name: ((x, y[:1]), (x, y)))
    with pytest.raises(DatasetError, match="x_train has 2 images.*y_train has 1 labels"):
        load_mnist()


# ----------------------------------------------------------------------- validation


def test_count_mismatch_names_both_files(tmp_path: Path) -> None:
    make_set(tmp_path / "d", n_train=5, n_train_labels=4)
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path / "d")
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "5 images" in message
    assert "train-labels-idx1-ubyte.gz" in message and "4 labels" in message


def test_label_out_of_range(tmp_path: Path) -> None:
    make_set(tmp_path / "d")
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", np.array([0, 10, 3], np.uint8))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: labels must be 0\.\.9, found 10"):
        load_mnist(tmp_path / "d")


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (np.zeros((2, 28, 28), np.float32), np.zeros(2, np.uint8), "img.*uint8 of shape"),
        (np.zeros((2, 784), np.uint8), np.zeros(2, np.uint8), r"img.*\(2, 784\)"),
        (np.zeros((2, 8, 8), np.uint8), np.zeros(2, np.uint8), r"img.*\(2, 8, 8\)"),
        (np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.int32), "lbl.*int32"),
        (np.zeros((2, 28, 28), np.uint8), np.zeros((2, 1), np.uint8), r"lbl.*\(2, 1\)"),
    ],
)
def test_validate_split_rejects(images, labels, match) -> None:
    with pytest.raises(DatasetError, match=match):
        validate_split(images, labels, "img", "lbl")


def test_wrong_dtype_in_file(tmp_path: Path) -> None:
    make_set(tmp_path / "d")
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", np.zeros(5, np.int32))
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz: labels must be uint8"):
        load_mnist(tmp_path / "d")


def test_corrupt_file_propagates_idx_error(tmp_path: Path, monkeypatch, isolated) -> None:
    make_set(tmp_path / "d")
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path / "d")
    assert isolated == []


# ------------------------------------------------------------------- search helpers


def test_idx_files_in_prefers_raw_and_reports_missing(tmp_path: Path) -> None:
    make_set(tmp_path, gz=True)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    found, missing = idx_files_in(tmp_path)
    assert found["train_images"] == tmp_path / "train-images-idx3-ubyte"
    assert found["train_labels"] == tmp_path / "train-labels-idx1-ubyte.gz"
    assert "test_images" not in found
    assert missing == ["t10k-images-idx3-ubyte[.gz]"]


def test_find_idx_dir_order_and_notes(tmp_path: Path) -> None:
    make_set(tmp_path / "good")
    (tmp_path / "empty").mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    env = {"MY_VAR": str(tmp_path / "empty")}
    directory, tried = find_idx_dir(
        "X", None, "MY_VAR", [tmp_path / "missing", a_file, tmp_path / "good"], environ=env
    )
    assert directory == tmp_path / "good"
    assert tried[0] == "path argument: not given"
    assert tried[1].startswith(f"$MY_VAR={tmp_path / 'empty'}: missing train-images")
    assert tried[2] == f"{tmp_path / 'missing'}: directory does not exist"
    assert tried[3] == f"{a_file}: not a directory"
    assert len(tried) == 4

    directory, tried = find_idx_dir("X", None, "MY_VAR", [], environ={})
    assert directory is None
    assert tried == ["path argument: not given", "$MY_VAR: not set"]


def test_find_idx_dir_env_var_hit(tmp_path: Path) -> None:
    make_set(tmp_path / "good")
    directory, tried = find_idx_dir(
        "X", None, "V", [tmp_path / "other"], environ={"V": str(tmp_path / "good")}
    )
    assert directory == tmp_path / "good"
    assert tried == ["path argument: not given"]


def test_load_idx_dir_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="missing train-images-idx3-ubyte"):
        load_idx_dir(tmp_path)


# -------------------------------------------------------------------------- samples


def test_class_names() -> None:
    assert CLASS_NAMES["mnist"] == [str(i) for i in range(10)]
    assert len(CLASS_NAMES["fashion"]) == 10
    assert CLASS_NAMES["fashion"][0] == "T-shirt/top"
    assert CLASS_NAMES["fashion"][9] == "Ankle boot"


def test_samples_bad_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"'digits'.*'mnist', 'fashion'"):
        samples("digits")


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_samples_reads_npz(tmp_path: Path, monkeypatch, name: str) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([9, 0, 4], np.uint8)
    np.savez(tmp_path / f"samples_{name}.npz", images=images, labels=labels)
    asked: list[str] = []

    def fake_location(n: str) -> Path:
        asked.append(n)
        return tmp_path / f"samples_{n}.npz"

    monkeypatch.setattr(datasets, "_sample_file", fake_location)
    got_images, got_labels = samples(name)
    assert asked == [name]
    assert got_images.dtype == np.uint8 and got_images.shape == (3, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_samples_default_is_mnist(tmp_path: Path, monkeypatch) -> None:
    np.savez(
        tmp_path / "s.npz", images=np.zeros((1, 28, 28), np.uint8), labels=np.zeros(1, np.uint8)
    )
    asked: list[str] = []
    monkeypatch.setattr(datasets, "_sample_file", lambda n: asked.append(n) or tmp_path / "s.npz")
    samples()
    assert asked == ["mnist"]


def test_samples_missing_key_and_bad_content(tmp_path: Path, monkeypatch) -> None:
    np.savez(tmp_path / "s.npz", images=np.zeros((1, 28, 28), np.uint8))
    monkeypatch.setattr(datasets, "_sample_file", lambda n: tmp_path / "s.npz")
    with pytest.raises(DatasetError, match=r"s\.npz: missing key\(s\) labels"):
        samples("mnist")

    np.savez(tmp_path / "s.npz", images=np.zeros((2, 28, 28), np.uint8), labels=np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match="2 images.*3 labels"):
        samples("fashion")


def test_sample_file_location() -> None:
    location = datasets._sample_file("fashion")
    assert location.name == "samples_fashion.npz"
    assert str(location).replace("\\", "/").endswith("oipwidgets/data/samples_fashion.npz")
