"""Writes demo.ipynb (without outputs) from the cells below: edit here, then run `python scripts/make_demo.py`."""
import nbformat as nbf
nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md("""# What do the maps of a CNN react to? — a tour with oipwidgets

A trained convolutional network turns an image into many *maps* (channels) per layer. To see what one map reacts
to, we grow an **OIP** — the input image that activates the map most — by gradient ascent out of random noise:
measure the map's mean activation, follow its gradient with respect to the input pixels (scaled to unit RMS, step
size `epsilon`), re-standardise the image, repeat. This notebook walks through the questions of the article series
on a simple MNIST CNN, with live widgets instead of static plots. Everything runs offline: the package ships the
article's CNN trained on MNIST and on Fashion-MNIST."""),
code("""import numpy as np
import ipywidgets as widgets
import oipwidgets as ow

model = ow.load_default_model("mnist")
card = ow.model_card("mnist")
print(f"{model.name}: {model.count_params():,} parameters, test accuracy {card['test_accuracy']:.2%}")
[(layer.name, layer.kind, layer.shape) for layer in ow.OIPEngine.layers(model)]"""),
md("""## 1. Explore one map of `Conv2D_3`

Pick a layer and a map, set the noise (grid sizes and a weight per scale), press **Run** and watch the pattern
emerge. The top row shows the start image and the snapshots at the article's log-spaced steps with plain colours,
the bottom row the same images with enhanced contrast; the curve shows the objective (the map's mean activation).
Every control is a trait of the widget, so you can also drive it from code."""),
code("""explorer = ow.OIPExplorer(model, layer="Conv2D_3", map_index=5, seed=1)
explorer"""),
code("""result = explorer.run(wait=True)  # the same as pressing Run, but waits for the result
result, result.snapshot_steps, round(result.final_loss, 3)"""),
md("""## 2. Dead maps and how to revive them

For a given start noise some maps never fire: their activation and its gradient stay exactly zero, and gradient
ascent has nothing to follow. The engine detects this (after more than 10 such steps), stops, and says so instead of
looping. Let us run all 64 maps of `Conv2D_3` as one batch for a few steps and count the dead ones."""),
code("""engine = ow.OIPEngine(model, "Conv2D_3")
short = engine.run_layer(steps=30, seed=1)
dead = [r.params["map"] for r in short if r.status == "dead"]
print(short)
print("dead for seed 1:", dead)"""),
md("""A dead map is dead *for this noise*. Three ways out: (a) noise with more weight on the coarse scales (large
structures), (b) the **multiscale** strategy (evolve the coarsest noise first, then add finer scales one by one),
(c) the **precursor** strategy (try several coarse starts for a few steps, continue with the best)."""),
code("""m = dead[0] if dead else 0
coarse = ow.MultiScaleNoise(scales=[(3, 3), (7, 7), (14, 14), (28, 28)], weights=[1.5, 1.0, 0.2, 0.05])
tries = {
    "simple, default noise": engine.run(m, steps=200, seed=1),
    "simple, coarse noise": engine.run(m, steps=200, seed=1, noise=coarse),
    "multiscale": engine.run(m, steps=200, seed=1, strategy="multiscale"),
    "precursor": engine.run(m, steps=200, seed=1, strategy=ow.Precursor(n=8)),
}
for name, r in tries.items():
    print(f"map {m:2d} {name:24s} {r.status:10s} final objective {r.final_loss:.3f}")"""),
md("""The same in the explorer: choose the map, switch the strategy (or raise the coarse weights) and press Run."""),
code("""explorer.map_index = m
explorer.strategy = "multiscale"
explorer.run(wait=True).status"""),
md("""## 3. Two noise wavelengths, side by side

Does the OIP depend on the length scale of the start noise? Two explorers with their layer and map linked (plain
`traitlets` links), one with coarse noise only and one with fine noise only."""),
code("""coarse_view = ow.OIPExplorer(model, map_index=12, seed=3)
fine_view = ow.OIPExplorer(model, map_index=12, seed=3)
coarse_view.noise_weights = [1.0, 0.5, 0.0, 0.0]
fine_view.noise_weights = [0.0, 0.0, 0.5, 1.0]
for trait in ("layer", "map_index", "steps"):
    widgets.link((coarse_view, trait), (fine_view, trait))
a, b = coarse_view.run(wait=True), fine_view.run(wait=True)
print(f"coarse noise: {a.status}, objective {a.final_loss:.3f};  fine noise: {b.status}, objective {b.final_loss:.3f}")
widgets.VBox([widgets.HTML("<b>coarse noise</b>"), coarse_view, widgets.HTML("<b>fine noise</b>"), fine_view])"""),
md("""Note: the ascent is chaotic for many maps. Changing the start image in its last decimal can move the final
image noticeably, so compare OIPs by the objective they reach, or give both runs the same `start` image:
`engine.run(m, start=image)`."""),
md("""## 4. Fashion-MNIST

The same CNN trained on Fashion-MNIST (clothes instead of digits) learns other patterns."""),
code("""fashion = ow.load_default_model("fashion")
print(f"Fashion-MNIST model: test accuracy {ow.model_card('fashion')['test_accuracy']:.2%}")
fashion_explorer = ow.OIPExplorer(fashion, map_index=3, seed=0)
fashion_explorer.run(wait=True)
fashion_explorer"""),
md("""## 5. The zoo of a whole layer

All 64 maps of `Conv2D_3` at once, computed as one batch: each tile shows a map's OIP with its index and final mean
activation; dead maps are marked. Sort by activation, click a tile to see its OIP beside the sample digits that
activate that map most, and open it in an explorer."""),
code("""zoo = ow.LayerZoo(model, "Conv2D_3", steps=200, seed=1)
zoo.run(wait=True)
zoo.selected = int(np.argmax(zoo.result.final_losses))  # the same as clicking the strongest tile
print(zoo.status)
zoo"""),
md("""## 6. What a real digit does inside the network

The activation patterns a real input creates: every map of a conv layer (one shared colour scale, so maps compare),
the units of the dense layer, and the class probabilities. The values are exactly the model's."""),
code("""viewer = ow.ActivationViewer(model, labels=ow.datasets.samples("mnist")[1], image_index=3)
viewer"""),
md("""## 7. A colour model with planted features

`load_default_model("planted")` classifies 64×64 colour images of gratings whose orientation, frequency and colour
pair define the class (`oipwidgets.models.planted.class_table()`). The article's pixel ascent finds each class's
orientation and colours but draws them as noisy stripes; the field's recipe (a Fourier parameterisation with
decorrelated colours, robustness transforms, Adam) draws the grating itself. `benchmarks/bench_fidelity.py` measures
that the OIPs show the planted features."""),
code("""planted = ow.load_default_model("planted")
print(ow.models.planted.class_table()[1])   # class 1: 45°, 0.14 cycles/pixel, red–cyan
logits = ow.OIPEngine(planted, "logits")
article = logits.run(1, steps=256, seed=0)
readable = logits.run(1, steps=256, seed=0, param="fourier", transforms="standard", optimizer="adam", epsilon=0.05)
print(article.params["param"], round(article.final_loss, 1), "|", readable.params["param"], round(readable.final_loss, 1))"""),
md("""The explorer has the same choices under "how the image climbs" (parameterisation, transforms, optimiser,
smoothness, and several different OIPs of one map at once)."""),
code("""colour_view = ow.OIPExplorer(planted, layer="logits", map_index=1, steps=256, param="fourier",
                             transforms="standard", optimizer="adam", epsilon=0.05)
colour_view.run(wait=True)
colour_view"""),
md("""## 8. A real trained colour CNN: MTCNN's face detector

The `mtcnn` package (MIT) ships the trained weights of its face-detection networks inside its wheel. Its O-Net is
a subclassed `keras.Model` that takes 48×48 RGB scaled as `(x·255 − 127.5) / 128` and ends in a face softmax. Say
that convention once with `preprocess=`; the OIPs are then RGB images in [0, 1], with the readable recipe. The
face unit climbs its score before the softmax (`climbed`), and the photo of Grace Hopper that ships with
matplotlib shows what a real face scores."""),
code("""import os, matplotlib
from PIL import Image
from mtcnn.network.onet import ONet
from mtcnn.utils.tensorflow import load_weights

onet = ONet()
onet.build()
onet.set_weights(load_weights("onet.lz4"))

def mtcnn_input(rgb):
    \"\"\"mtcnn's normalisation of RGB in [0, 1].\"\"\"
    return (rgb * 255.0 - 127.5) / 128.0

photo = Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")).convert("RGB")
face = np.asarray(photo.crop((178, 110, 351, 330)).resize((48, 48)), np.float32)[None] / 255
face_unit = ow.OIPEngine(onet, "fc6-3", preprocess=mtcnn_input, input_shape=(48, 48, 3))
oip = face_unit.run(1, seed=0, recipe="readable", steps=128)
print("climbed:", oip.params["climbed"], "| real face:", round(float(face_unit.activations(face)[0, 1]), 2),
      "| OIP:", round(oip.final_loss, 2), "| values near 0 or 1:", f"{oip.saturated:.1%}")"""),
code("""onet_view = ow.OIPExplorer(onet, layer="conv4", map_index=3, recipe="readable", steps=128,
                           preprocess=mtcnn_input, input_shape=(48, 48, 3))
onet_view.run(wait=True)
onet_view"""),
md("""## 9. Keep the results

The final OIP and the grid as PNG, the emerging pattern as an animated GIF, and the whole result (images,
snapshots, steps, losses, parameters) as `.npz`."""),
code("""import tempfile, pathlib
out = pathlib.Path(tempfile.mkdtemp())
explorer.strategy = "simple"
explorer.run(wait=True)
paths = [explorer.save_png(out / "oip.png"), explorer.save_grid_png(out / "grid.png"),
         explorer.save_gif(out / "oip.gif"), explorer.save_npz(out / "oip.npz")]
[(p.name, p.stat().st_size) for p in paths]"""),
md("""## 10. An atlas of the whole model

The OIP of every channel of some layers, for a few seeds, computed as Dask tasks and kept in a Zarr store that any
process can read without the model (`ow.Atlas`). Here two layers, one seed and a short climb, on a local cluster
(one worker process per core, shut down afterwards); then one pass over the sample digits finds, for every channel
of both layers, the images that activate it most, with their activation maps."""),
code("""import tempfile, pathlib
atlas_path = pathlib.Path(tempfile.mkdtemp()) / "mnist.atlas.zarr"
atlas = ow.Atlas.create(atlas_path, model, layers=["Conv2D_1", "Conv2D_3"], seeds=(0,),
                        recipe=ow.Recipe.preset("readable").replace(steps=16))
print(atlas.compute(client=None, progress=False))      # a local Dask cluster, shut down afterwards
digits = ow.datasets.samples("mnist")[0]
print(atlas.add_examples(digits, k=8, progress=False))  # in this process: one pass for both layers"""),
md("""Browse it page by page: tiles sorted by unit or by objective, dead maps faint with their status in red, a search
box for `layer:channel`. Click a tile for the unit: its OIP per seed, the sample digits that activate it most with
the activation map over each, and a button that opens the unit in an explorer. The viewer reads only the tiles on
screen, so an atlas of tens of thousands of channels opens as fast; while `compute()` runs elsewhere, "refresh"
(or `refresh_every=` seconds) shows the channels finished since."""),
code("""atlas_viewer = ow.AtlasViewer(atlas_path)
atlas_viewer"""),
md("""The same atlas as a static web site (plain HTML and PNG files, nothing fetched from elsewhere) for any web host
or a folder: `oipwidgets atlas export PATH SITE` does the same from the command line."""),
code("""site = atlas.export_site(pathlib.Path(tempfile.mkdtemp()) / "site")
print(site)"""),
]
nb["cells"] = cells
nb["metadata"] = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                  "language_info": {"name": "python"}}
nbf.write(nb, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "demo.ipynb"))
