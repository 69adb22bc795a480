"""The OIP zoo: PNG size and dead-map marking, the self-contained HTML page, and the `oipwidgets zoo` command."""

import base64
import io
import re
from html.parser import HTMLParser

import keras
import numpy as np
import pytest
from PIL import Image

from oipwidgets import cli
from oipwidgets.engine.result import LayerResult, OIPResult
from oipwidgets.output.zoo_render import zoo_figure_png, zoo_html, zoo_png_bytes, zoo_size

DATA_URI = "data:image/png;base64,"


def fake_result(statuses, seed=0, layer="Conv2D_3"):
    """A LayerResult made by hand (no ascent): random images, the given statuses, final loss = map index."""
    rng = np.random.default_rng(seed)
    results = []
    for m, status in enumerate(statuses):
        img = rng.normal(size=(28, 28, 1)).astype(np.float32)
        results.append(OIPResult(
            image=img, start=img, snapshots=img[None], snapshot_steps=np.array([0]), snapshot_losses=np.array([0.0]),
            losses=np.zeros(3), status=status, steps=3, final_loss=0.0 if status == "dead" else float(m) + 0.5,
            converged_at=2 if status == "converged" else None,
            params={"layer": layer, "map": m, "strategy": "simple", "steps": 3}))
    return LayerResult(results, seconds=1.5)


class PageCheck(HTMLParser):
    """Collects the page's images, links, table rows; fails on anything that would need the network."""

    def __init__(self):
        super().__init__()
        self.images, self.rows, self.external, self.tags = [], [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(attrs)
        if tag == "tr":
            self.rows.append(attrs.get("class"))
        for key in ("src", "href", "srcset", "data", "action"):
            value = attrs.get(key)
            if value is not None and not value.startswith(("data:", "#")):
                self.external.append((tag, key, value))
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append((tag, attrs))


def check_page(text, n_rows):
    """The page parses, holds one inline PNG zoo that decodes, and refers to nothing outside itself."""
    assert text.count(DATA_URI) == 1
    assert "http://" not in text and "https://" not in text and "url(" not in text and "@import" not in text
    page = PageCheck()
    page.feed(text)
    page.close()
    assert page.external == []
    assert {"html", "head", "body", "style", "table", "img"} <= page.tags
    assert len(page.images) == 1 and page.images[0]["src"].startswith(DATA_URI)
    png = Image.open(io.BytesIO(base64.b64decode(page.images[0]["src"][len(DATA_URI):], validate=True)))
    png.load()  # decodes every pixel
    assert png.format == "PNG"
    assert png.size == (int(page.images[0]["width"]), int(page.images[0]["height"]))
    assert len(page.rows) == n_rows + 1  # header row + one per map
    return page, png


# ------------------------------------------------------------------ rendering
def test_zoo_size_formula():
    assert zoo_size(64, 8) == (960, 1240)
    assert zoo_size(5, 3) == (360, 340)
    assert zoo_size(3, 8) == (360, 190)  # fewer OIPs than columns: one short row
    assert zoo_size(1, 1) == (120, 190)
    with pytest.raises(ValueError, match="cols"):
        zoo_size(4, 0)


def test_png_has_the_documented_size_and_marks_dead_maps(tmp_path):
    statuses = ["converged", "dead", "max_steps", "stopped", "dead"]
    lr = fake_result(statuses)
    for cols in (3, 8, 1):
        path = zoo_figure_png(lr, tmp_path / f"zoo{cols}.png", cols=cols, contrast=cols == 8, title="t")
        with Image.open(path) as im:
            assert im.size == zoo_size(5, cols)
    rgb = np.asarray(Image.open(tmp_path / "zoo3.png").convert("RGB")).astype(int)
    red = (rgb[..., 0] > 190) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)

    def tile(i):  # the pixels of tile i on the 3-column grid
        r, c = divmod(i, 3)
        return red[40 + 150 * r : 40 + 150 * (r + 1), 120 * c : 120 * (c + 1)]

    assert [tile(i).sum() > 300 for i in range(5)] == [s == "dead" for s in statuses]  # red frame + "DEAD"
    # a dead tile is grey, a live one colour-mapped
    dead_box = rgb[40 + 6 + 20 : 40 + 6 + 80, 120 + 30 : 120 + 90]
    live_box = rgb[40 + 6 + 20 : 40 + 6 + 80, 30:90]
    assert np.abs(dead_box[..., 0] - dead_box[..., 2]).max() <= 2
    assert np.abs(live_box[..., 0] - live_box[..., 2]).max() > 50


def test_png_is_deterministic_and_checks_input(tmp_path):
    lr = fake_result(["converged", "max_steps"])
    assert zoo_png_bytes(lr) == zoo_png_bytes(lr)
    with pytest.raises(ValueError, match="no OIPs"):
        zoo_png_bytes(LayerResult([]))
    with pytest.raises(ValueError, match="colour map"):
        zoo_png_bytes(lr, cmap="nope")


def test_html_is_self_contained(tmp_path):
    lr = fake_result(["converged", "dead", "max_steps", "max_steps"])
    path = zoo_html(lr, tmp_path / "zoo.html", title="Zoo <of> maps", cols=2, info={"model": "m & n"})
    text = path.read_text(encoding="utf-8")
    page, png = check_page(text, n_rows=4)
    assert png.size == zoo_size(4, 2)
    assert page.rows[1:] == ["converged", "dead", "max_steps", "max_steps"]
    assert "Zoo &lt;of&gt; maps" in text and "m &amp; n" in text
    assert re.search(r"<td[^>]*>1</td><td>DEAD</td>", text)
    # an already rendered PNG is embedded as is
    png_path = zoo_figure_png(lr, tmp_path / "z.png", cols=4)
    zoo_html(lr, tmp_path / "again.html", png=png_path)
    assert base64.b64encode(png_path.read_bytes()).decode() in (tmp_path / "again.html").read_text()


# ------------------------------------------------------------------ the command
def test_zoo_command_writes_png_and_html(tmp_path, capsys):
    out, page = tmp_path / "sub" / "zoo.png", tmp_path / "zoo.html"
    argv = ["zoo", "--steps", "20", "--seed", "1", "--contrast", "--out", str(out), "--html", str(page)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    with Image.open(out) as im:
        assert im.size == zoo_size(64, 8) == (960, 1240)
    _, png = check_page(page.read_text(encoding="utf-8"), n_rows=64)
    assert png.size == (960, 1240)
    assert "20/20 steps" in captured.err and "\r" in captured.err  # the one-line progress bar
    m = re.search(r"dead maps: (\d+) of 64", captured.out)
    assert m and int(m.group(1)) == page.read_text().count('<tr class="dead">')
    assert re.search(r"wall time \d+\.\d s", captured.out)
    assert f"wrote {out}" in captured.out and f"wrote {page}" in captured.out


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    inputs = keras.Input(shape=(12, 12, 1))
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="d")(x)
    path = tmp_path_factory.mktemp("m") / "small.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_zoo_command_on_a_model_file(small_model_file, tmp_path, capsys):
    out = tmp_path / "small.png"
    argv = ["zoo", "--model", str(small_model_file), "--layer", "c1", "--steps", "5", "--cols", "2",
            "--strategy", "multiscale", "--out", str(out)]
    assert cli.main(argv) == 0
    with Image.open(out) as im:
        assert im.size == zoo_size(5, 2) == (240, 490)
    assert "5 OIPs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layer", "Dense_1"], r"'Dense_1' has no maps .*conv-like layer.*Conv2D_3"),
        (["--layer", "Flatten"], r"'Flatten' has no maps"),
        (["--layer", "Conv2D_9"], r"unknown layer 'Conv2D_9'.*Conv2D_1.*Conv2D_2.*Conv2D_3"),
        (["--model", "MISSING"], r"No model file at .*missing\.keras"),
        (["--steps", "0"], r"--steps must be a whole number >= 1; got 0"),
        (["--steps", "-5"], r"--steps must be a whole number >= 1; got -5"),
        (["--cols", "0"], r"--cols"),
        (["--epsilon", "0"], r"--epsilon"),
        (["--cmap", "nope"], r"colour map 'nope'"),
    ],
)
def test_zoo_command_errors(args, message, tmp_path, capsys):
    args = [str(tmp_path / "missing.keras") if a == "MISSING" else a for a in args]
    out = tmp_path / "zoo.png"
    assert cli.main(["zoo", "--steps", "3", *args, "--out", str(out)]) == 2  # the last --steps wins
    err = capsys.readouterr().err
    assert err.startswith("oipwidgets zoo: error: ")
    assert re.search(message, err), err
    assert not out.exists()


def test_zoo_command_model_directory_and_output_directory(tmp_path, capsys):
    assert cli.main(["zoo", "--model", str(tmp_path), "--steps", "3", "--out", str(tmp_path / "z.png")]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert cli.main(["zoo", "--steps", "3", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse's own check of --strategy
        cli.main(["zoo", "--strategy", "nope"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ------------------------------------------------------------------ recipe and preprocess (issue 19)
def test_zoo_command_recipe_flags_override_it_and_the_record_says_it(small_model_file, tmp_path, capsys):
    import html
    import json

    from oipwidgets.engine.recipe import Recipe

    record, page = tmp_path / "zoo.json", tmp_path / "zoo.html"
    argv = ["zoo", "--model", str(small_model_file), "--layer", "c1", "--recipe", "readable", "--steps", "6",
            "--optimizer", "rms", "--out", str(tmp_path / "zoo.png"), "--json", str(record), "--html", str(page)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    want = Recipe.preset("readable").replace(steps=6, optimizer="rms")  # only the flags given override it
    data = json.loads(record.read_text())
    assert Recipe.from_dict(data["recipe"]) == want and data["recipe"] == want.to_dict()
    assert data["recipe_name"] is None and data["preprocess"] == "standardize" and data["layer"] == "c1"
    assert [m["map"] for m in data["maps"]] == list(range(5)) and all(m["steps"] <= 6 for m in data["maps"])
    assert "recipe: readable with steps=6, optimizer='rms'" in out and f"wrote {record} (JSON record)" in out
    text = page.read_text(encoding="utf-8")
    check_page(text, n_rows=5)
    assert "readable with steps=6" in text and html.escape(want.to_json()) in text  # the recipe, as its dict

    assert cli.main(["zoo", "--model", str(small_model_file), "--layer", "c1", "--steps", "3",
                     "--out", str(tmp_path / "a.png"), "--json", str(record)]) == 0
    assert json.loads(record.read_text())["recipe"] == Recipe(steps=3).to_dict()  # default: the article's


def test_zoo_command_preprocess(tmp_path, capsys):
    import json

    rgb = keras.Sequential([keras.Input((10, 10, 3)), keras.layers.Conv2D(3, 3, activation="relu", name="c"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    path = tmp_path / "rgb.keras"
    rgb.save(path)
    record = tmp_path / "rgb.json"
    argv = ["zoo", "--model", str(path), "--layer", "c", "--steps", "4", "--preprocess", "caffe",
            "--out", str(tmp_path / "rgb.png"), "--json", str(record)]
    assert cli.main(argv) == 0
    assert "preprocess caffe: OIPs are RGB in [0, 1]" in capsys.readouterr().out
    data = json.loads(record.read_text())
    assert data["preprocess"] == "caffe" and all(0.0 <= m["saturated"] <= 1.0 for m in data["maps"])
    # a convention the model cannot take is refused with the valid ones, before any ascent
    assert cli.main(["zoo", "--steps", "3", "--preprocess", "torch", "--out", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"preprocess 'torch' .* needs 3 channels; this model takes 1\. Valid for it: 'standardize'", err)
    with pytest.raises(SystemExit):
        cli.main(["zoo", "--recipe", "fancy"])
    assert "invalid choice: 'fancy' (choose from 'article', 'readable')" in capsys.readouterr().err


def test_zoo_command_rescues_maps_that_a_shipped_sample_fires(tmp_path, capsys):
    import json

    record = tmp_path / "zoo.json"
    common = ["zoo", "--steps", "200", "--seed", "1", "--out", str(tmp_path / "z.png"), "--json", str(record)]
    assert cli.main([*common, "--no-rescue"]) == 0
    plain = json.loads(record.read_text())["maps"]
    assert cli.main(common) == 0
    cured = json.loads(record.read_text())["maps"]
    false_dead = [m["map"] for m in cured if m["status"] == "dead" and m["best_example"] > 0]
    assert false_dead == [] and sum(m["status"] == "dead" for m in plain) > 5
    assert sum(m["cure"] is not None for m in cured) >= 5 and all(m["cure"] is None for m in plain)
