"""Models as people have them: a base model inside a transfer model, subclassed models, a separate softmax layer.

Every probe is checked against the numbers computed by hand (a sub-model of the base, the subclassed model's layers
called one by one, the tensor entering the softmax), and every run against the objective it must climb.
"""

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import oipwidgets as ow
from oipwidgets.cli import layer_listing
from oipwidgets.engine.probe import make_probe

L = keras.layers


def images(n, shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=(n, *shape)) * scale).astype(np.float32)


def reference_ascent(sub, maps, start, steps, epsilon=0.01):
    """The article's loop in plain eager TensorFlow on ``sub`` (images → maps): the final images and objectives."""
    img = tf.constant(start, tf.float32)
    pick = tf.one_hot(maps, sub(img[:1]).shape[-1])
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(img)
            total = tf.reduce_sum(tf.reduce_mean(sub(img), axis=[1, 2]) * pick)
        grad = tape.gradient(total, img)
        grad /= tf.sqrt(tf.reduce_mean(tf.square(grad), axis=[1, 2, 3], keepdims=True)) + 1e-7
        img = tf.image.per_image_standardization(img + epsilon * grad)
    return img.numpy(), tf.reduce_sum(tf.reduce_mean(sub(img), axis=[1, 2]) * pick, axis=1).numpy()


def small_base(name="base", shape=(24, 24, 3)):
    inp = keras.Input(shape)
    x = L.Conv2D(6, 3, activation="relu", name="b_conv1")(inp)
    x = L.MaxPooling2D(name="b_pool")(x)
    x = L.Conv2D(8, 3, name="b_conv2")(x)
    x = L.ReLU(name="b_relu")(x)
    return keras.Model(inp, x, name=name)


# ------------------------------------------------------------------ nested models
@pytest.fixture(scope="module")
def transfer():
    """The most common transfer model: Sequential([MobileNetV2 without top, GAP, Dense])."""
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3))
    return base, keras.Sequential([base, L.GlobalAveragePooling2D(), L.Dense(4)])


def test_a_layer_of_the_base_is_probed_by_path_by_plain_name_and_by_object(transfer):
    base, model = transfer
    inner = base.get_layer("block_6_expand_relu")
    x = images(3, (64, 64, 3), seed=1)
    want = keras.Model(base.input, inner.output)(x).numpy()
    path = f"{base.name}/block_6_expand_relu"
    engines = [ow.OIPEngine(model, path), ow.OIPEngine(model, "block_6_expand_relu"), ow.OIPEngine(model, inner)]
    for e in engines:
        assert e.layer.name == path and e.layer.kind == "maps" and e.layer.shape == want.shape[1:]
        np.testing.assert_array_equal(e.activations(x), want)
    assert engines[0].probe is engines[1].probe is engines[2].probe  # one key: one probe, one compiled loop
    infos = {i.name: i for i in ow.OIPEngine.layers(model)}
    assert infos[base.name].kind == "maps" and infos[base.name].index == 0  # the nested model itself stays
    assert infos[path].index is None and infos[path].group == base.name
    assert infos[path].label == f"{base.name} / block_6_expand_relu"
    names = list(infos)
    assert names[0] == base.name and names[1] == f"{base.name}/Conv1" and names[-2:] == [
        model.layers[1].name, model.layers[2].name]
    # the memory estimate counts the base's layers up to the probed one, not the whole base
    assert engines[0].image_bytes < ow.OIPEngine(model, f"{base.name}/out_relu").image_bytes


def test_a_nested_layer_climbs_exactly_like_the_article_loop_on_the_base():
    keras.utils.set_random_seed(1)
    base = small_base()
    model = keras.Sequential([base, L.GlobalAveragePooling2D(), L.Dense(3)])
    engine = ow.OIPEngine(model, "b_conv2")
    start = engine.start_images(seeds=(4,))
    r = engine.run(5, steps=10, start=start[0])
    ref, final = reference_ascent(keras.Model(base.input, base.get_layer("b_conv2").output), [5], start, steps=10)
    np.testing.assert_allclose(r.image, ref[0], atol=1e-4)
    assert r.final_loss == pytest.approx(final[0], rel=1e-4, abs=1e-5)
    assert r.final_loss > r.losses[0] and r.params["layer"] == "base/b_conv2"
    assert r.params["climbed"] == "'base/b_conv2'"


def test_a_sub_model_called_by_a_functional_model_after_other_layers():
    keras.utils.set_random_seed(2)
    base = small_base("features", (20, 20, 3))
    inp = keras.Input((20, 20, 3))
    x = L.Rescaling(1 / 127.5, offset=-1, name="scale")(inp)
    out = L.Dense(2, name="head")(L.GlobalAveragePooling2D()(base(x)))
    model = keras.Model(inp, out)
    engine = ow.OIPEngine(model, "features/b_pool")
    x = images(2, (20, 20, 3), scale=60.0) + 127.5
    want = keras.Model(base.input, base.get_layer("b_pool").output)(x / 127.5 - 1).numpy()
    np.testing.assert_allclose(engine.activations(x), want, rtol=1e-6, atol=1e-6)
    # memory: the outer layers before the base, then the base's layers up to b_pool, at 4 bytes, factor 2
    acts = 20 * 20 * 3 + 18 * 18 * 6 + 9 * 9 * 6
    assert engine.image_bytes == int(2 * 4 * acts + 8 * 4 * 20 * 20 * 3)
    run = ow.OIPEngine(model, "features/b_conv2", input_mode="identity").run_layer([0, 3], steps=8, seed=0)
    assert all(r.final_loss > r.losses[0] for r in run)


def test_deeper_nesting_and_a_base_that_takes_any_image_size():
    keras.utils.set_random_seed(3)
    block = keras.Sequential([L.Conv2D(4, 3, name="k1"), L.ReLU(name="k2")], name="block")
    block.build((None, None, None, 3))  # any image size
    mid_in = keras.Input((None, None, 3))
    middle = keras.Model(mid_in, L.MaxPooling2D(name="m_pool")(block(mid_in)), name="middle")
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, L.Dense(2)(L.Flatten()(middle(inp))))
    infos = {i.name: i for i in ow.OIPEngine.layers(model)}
    assert infos["middle/block/k1"].shape == (14, 14, 4) and infos["middle/m_pool"].shape == (7, 7, 4)
    assert infos["middle/block/k1"].group == "middle/block"
    x = images(2, (16, 16, 3), seed=5)
    want = keras.ops.relu(block.get_layer("k1")(x)).numpy()
    np.testing.assert_allclose(ow.OIPEngine(model, "middle/block/k2").activations(x), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ow.OIPEngine(model, "k2").activations(x), want, rtol=1e-6, atol=1e-6)
    # the outer model takes any size too: fixed at input_shape, the user's layer objects still name their layers
    free_in = keras.Input((None, None, 3))
    free = keras.Model(free_in, L.GlobalAveragePooling2D()(middle(free_in)))
    e = ow.OIPEngine(free, block.get_layer("k1"), input_shape=(12, 12, 3))
    assert e.layer.name == "middle/block/k1" and e.layer.shape == (10, 10, 4)
    np.testing.assert_allclose(e.activations(x[:, :12, :12]), block.get_layer("k1")(x[:, :12, :12]).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_the_fast_first_convolution_stays_exact_with_a_nested_model_after_it():
    keras.utils.set_random_seed(4)
    base = small_base("later", (26, 26, 4))
    inp = keras.Input((28, 28, 1))
    x = L.Conv2D(4, 3, activation="relu", name="first")(inp)
    model = keras.Model(inp, L.Conv2D(5, 3, name="top")(base(x)))
    x = tf.constant(images(2, (28, 28, 1), seed=2))
    for layer in ("top", "later/b_conv2"):
        fast, plain = make_probe(model, layer), make_probe(model, layer, fast=False)
        grads = []
        for probe in (fast, plain):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(tf.reduce_mean(probe(x), axis=[1, 2]) * tf.range(1.0, probe.layer.size + 1))
            grads.append(tape.gradient(y, x).numpy())
        np.testing.assert_allclose(fast(x).numpy(), plain(x).numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    assert make_probe(model, "top")._fn.__code__.co_varnames[:2] == ("images", "_conv")  # the fast path is taken


# ------------------------------------------------------------------ subclassed models
class Counted(L.Layer):
    """Identity that counts its calls (to see that a probe ends the forward pass at the probed layer)."""

    calls = 0

    def call(self, x):
        Counted.calls += 1
        return x


class ONet(keras.Model):
    """Shaped like MTCNN's O-Net: (Conv2D + PReLU + MaxPool) x3, Conv2D, Permute, Flatten, Dense, two heads."""

    def __init__(self):
        super().__init__(name="onet")
        self.conv1, self.prelu1 = L.Conv2D(8, 3, name="conv1"), L.PReLU(shared_axes=[1, 2], name="prelu1")
        self.pool1 = L.MaxPooling2D(3, 2, padding="same", name="pool1")
        self.conv2, self.prelu2 = L.Conv2D(12, 3, name="conv2"), L.PReLU(shared_axes=[1, 2], name="prelu2")
        self.pool2 = L.MaxPooling2D(3, 2, name="pool2")
        self.conv3, self.prelu3 = L.Conv2D(16, 3, name="conv3"), L.PReLU(shared_axes=[1, 2], name="prelu3")
        self.pool3 = L.MaxPooling2D(2, 2, name="pool3")
        self.conv4, self.prelu4 = L.Conv2D(24, 2, name="conv4"), L.PReLU(shared_axes=[1, 2], name="prelu4")
        self.counted = Counted(name="counted")
        self.permute, self.flatten = L.Permute((2, 1, 3), name="permute"), L.Flatten(name="flatten")
        self.fc, self.prelu5 = L.Dense(32, name="fc"), L.PReLU(name="prelu5")
        self.face = L.Dense(2, activation="softmax", name="face")
        self.box = L.Dense(4, name="box")

    def call(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.counted(self.prelu4(self.conv4(x)))
        x = self.prelu5(self.fc(self.flatten(self.permute(x))))
        return self.face(x), self.box(x)


def by_hand(net, x, upto):
    """The O-Net's layers called one by one up to ``upto``."""
    order = ["conv1", "prelu1", "pool1", "conv2", "prelu2", "pool2", "conv3", "prelu3", "pool3", "conv4", "prelu4",
             "permute", "flatten", "fc", "prelu5"]
    for name in order[: order.index(upto) + 1]:
        x = getattr(net, name)(x)
    return x.numpy()


@pytest.fixture(scope="module")
def onet():
    keras.utils.set_random_seed(5)
    return ONet()


def test_a_subclassed_model_needs_its_image_size_once(onet):
    with pytest.raises(ValueError, match=r"input_shape=\(height, width, channels\).*keras.Model\(x, model.call"):
        ow.OIPEngine(onet, "conv3")
    with pytest.raises(ValueError, match="input_shape"):
        ow.OIPEngine.layers(ONet())
    infos = ow.OIPEngine.layers(onet, input_shape=(48, 48, 3))
    assert [i.name for i in infos] == ["conv1", "prelu1", "pool1", "conv2", "prelu2", "pool2", "conv3", "prelu3",
                                       "pool3", "conv4", "prelu4", "counted", "permute", "flatten", "fc", "prelu5",
                                       "face", "box"]
    shapes = {i.name: i.shape for i in infos}
    assert shapes["conv1"] == (46, 46, 8) and shapes["pool3"] == (4, 4, 16) and shapes["flatten"] == (216,)
    assert all(i.index == onet.layers.index(getattr(onet, i.name)) for i in infos)
    assert ow.OIPEngine(onet, "conv3").input_shape == (48, 48, 3)  # now called: its size is known


def test_a_subclassed_models_layer_gives_the_numbers_of_its_layers_called_by_hand(onet):
    x = images(3, (48, 48, 3), seed=7)
    before = [t.numpy() for t in onet(x)]
    for name in ("conv1", "pool2", "prelu4", "fc"):
        e = ow.OIPEngine(onet, name, input_shape=(48, 48, 3))
        np.testing.assert_allclose(e.activations(x), by_hand(onet, x, name), rtol=1e-5, atol=1e-6)
    Counted.calls = 0
    ow.OIPEngine(onet, onet.conv2).activations(x)
    assert Counted.calls == 0  # the forward pass ended at conv2
    assert ow.OIPEngine(onet, 0).layer.name == "conv1"  # an index into onet.layers
    face = ow.OIPEngine(onet, "face")
    kernel, bias = onet.face.get_weights()
    np.testing.assert_allclose(face.activations(x), by_hand(onet, x, "prelu5") @ kernel + bias, rtol=1e-5, atol=1e-5)
    assert face.probe.pre_activation and face.probe.climbed == "'face' before its softmax"
    np.testing.assert_allclose(ow.OIPEngine(onet, "face", pre_activation=False).activations(x), before[0],
                               rtol=1e-6, atol=1e-7)
    # the user's layers are left as they were, and so are the model's numbers
    assert not any("call" in layer.__dict__ for layer in onet._flatten_layers())
    for got, want in zip(onet(x), before):
        np.testing.assert_array_equal(got.numpy(), want)


def test_a_subclassed_model_climbs_like_the_article_loop(onet):
    engine = ow.OIPEngine(onet, "conv3")
    start = engine.start_images(seeds=(2,))
    r = engine.run(4, steps=10, start=start[0])
    ref, final = reference_ascent(lambda img: onet.conv3(onet.pool2(onet.prelu2(onet.conv2(onet.pool1(
        onet.prelu1(onet.conv1(img))))))), [4], start, steps=10)
    np.testing.assert_allclose(r.image, ref[0], atol=1e-4)
    assert r.final_loss == pytest.approx(final[0], rel=1e-4, abs=1e-5) and r.final_loss > r.losses[0]
    batch = engine.run_layer([0, 1, 2, 3, 5], steps=6, seed=1)  # several images: parts traced in worker threads
    assert all(r.final_loss > r.losses[0] for r in batch)
    u = ow.OIPEngine(onet, "face").run(1, steps=40, seed=0)
    assert u.final_loss > u.losses[0] and u.params["climbed"] == "'face' before its softmax"


def test_probes_of_a_subclassed_model_from_several_threads_at_once(onet):
    probe = make_probe(onet, "prelu2", input_shape=(48, 48, 3))
    x = images(2, (48, 48, 3), seed=9)
    want = by_hand(onet, x, "prelu2")
    full = [t.numpy() for t in onet(x)]
    errors = []

    def work(k):
        try:
            for _ in range(3):
                traced = tf.function(lambda img: probe(img))
                np.testing.assert_allclose(traced(tf.constant(x)).numpy(), want, rtol=1e-5, atol=1e-6)
                if k % 2:  # plain calls of the model meanwhile see the model as it is
                    np.testing.assert_allclose(onet(x)[1].numpy(), full[1], rtol=1e-6, atol=1e-7)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert not any("call" in layer.__dict__ for layer in onet._flatten_layers())


def test_a_layer_called_twice_is_refused_with_the_reason():
    class Twice(keras.Model):
        def __init__(self):
            super().__init__(name="twice")
            self.conv, self.same = L.Conv2D(4, 3, name="conv"), L.Conv2D(4, 1, name="same")

        def call(self, x):
            return self.same(self.same(self.conv(x)))

    net = Twice()
    assert [i.name for i in ow.OIPEngine.layers(net, input_shape=(10, 10, 2))] == ["conv"]
    with pytest.raises(ValueError, match=r"layer 'same' has no spatial maps or units to probe \('twice' calls it 2 "
                                         r"times in one forward pass.*valid layers: conv"):
        ow.OIPEngine(net, "same")


def test_a_subclassed_model_that_cannot_take_one_image_is_refused_with_what_to_do():
    class TwoInputs(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(2, 3)

        def call(self, inputs):
            image, mask = inputs
            return self.conv(image * mask)

    with pytest.raises(ValueError, match=r"could not be run on one image of shape \(8, 8, 1\).*keras.Input"):
        ow.OIPEngine(TwoInputs(), "conv2d", input_shape=(8, 8, 1))


def test_a_subclassed_model_inside_a_functional_model():
    keras.utils.set_random_seed(6)
    net = ONet()
    inp = keras.Input((48, 48, 3))
    face, box = net(L.Rescaling(0.5, name="half")(inp))
    model = keras.Model(inp, [face, box])
    x = images(2, (48, 48, 3), seed=3)
    e = ow.OIPEngine(model, "onet/conv2")
    np.testing.assert_allclose(e.activations(x), by_hand(net, x * 0.5, "conv2"), rtol=1e-5, atol=1e-6)
    assert ow.OIPEngine(model, "pool3").layer.name == "onet/pool3"


# ------------------------------------------------------------------ class scores, never probabilities
def mini_xception():
    """Ends like mini-Xception: ... Conv2D(7) → GlobalAveragePooling2D → Activation("softmax", name="predictions")."""
    keras.utils.set_random_seed(7)
    inp = keras.Input((32, 32, 1))
    x = L.Conv2D(8, 3, activation="relu", name="c1")(inp)
    x = L.Conv2D(7, 3, name="c2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Activation("softmax", name="predictions")(x))


def test_a_separate_softmax_is_left_out_and_the_score_climbs_past_one():
    model = mini_xception()
    x = images(3, (32, 32, 1), seed=4)
    gap = keras.Model(model.input, model.get_layer("gap").output)(x).numpy()
    engine = ow.OIPEngine(model, "predictions")
    assert engine.probe.pre_activation and engine.probe.climbed == "input of 'predictions' (softmax)"
    np.testing.assert_array_equal(engine.activations(x), gap)
    r = ow.OIPEngine(model, "predictions", input_mode="identity").run(3, steps=60, epsilon=0.2, seed=0)
    assert r.final_loss > 1.0 > r.losses[0]  # a score, not a probability capped at 1
    assert r.params["climbed"] == "input of 'predictions' (softmax)"
    probs = ow.OIPEngine(model, "predictions", pre_activation=False)
    assert not probs.probe.pre_activation and probs.probe.climbed == "'predictions' (after its softmax)"
    np.testing.assert_allclose(probs.activations(x), model(x).numpy(), rtol=1e-6, atol=1e-7)
    p = ow.OIPEngine(model, "predictions", pre_activation=False, input_mode="identity").run(3, steps=60,
                                                                                          epsilon=0.2, seed=0)
    assert p.final_loss <= 1.0


def test_a_softmax_layer_after_flatten_and_a_dense_feeding_a_softmax():
    keras.utils.set_random_seed(8)
    inp = keras.Input((8, 8, 1))
    x = L.Conv2D(3, 8, name="score_map")(inp)
    probs = L.Softmax(name="probs")(L.Flatten(name="flat")(x))
    model = keras.Model(inp, probs)
    x = images(2, (8, 8, 1), seed=1)
    e = ow.OIPEngine(model, "probs")
    assert e.probe.climbed == "input of 'probs' (softmax)"
    np.testing.assert_allclose(e.activations(x), model.get_layer("score_map")(x).numpy().reshape(2, 3), rtol=1e-6)
    inp = keras.Input((6, 6, 1))
    logits = L.Dense(3, name="logits")(L.Flatten()(inp))
    model = keras.Model(inp, L.Activation("sigmoid", name="sig")(logits))
    d = ow.OIPEngine(model, "logits")  # its output already is the scores: nothing to leave out
    assert not d.probe.pre_activation and d.probe.climbed == "'logits'"
    x = images(2, (6, 6, 1), seed=2)
    np.testing.assert_allclose(d.activations(x), ow.OIPEngine(model, "sig").activations(x), rtol=1e-6)


def test_a_nested_classifier_ending_in_softmax_gives_its_scores():
    keras.utils.set_random_seed(9)
    inp = keras.Input((10, 10, 1))
    logits = L.Dense(4, name="logits")(L.Flatten()(L.Conv2D(2, 3)(inp)))
    inner = keras.Model(inp, L.Activation("softmax", name="predictions")(logits), name="classifier")
    model = keras.Sequential([keras.Input((10, 10, 1)), L.Rescaling(2.0), inner])
    x = images(2, (10, 10, 1), seed=3)
    e = ow.OIPEngine(model, "classifier")
    assert e.probe.climbed == "input of 'classifier/predictions' (softmax)"
    np.testing.assert_allclose(e.activations(x), keras.Model(inp, logits)(2 * x).numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ errors, pickers and listings
def test_unknown_and_ambiguous_names_list_what_is_valid():
    keras.utils.set_random_seed(10)
    a, b = small_base("a", (16, 16, 3)), small_base("b", (16, 16, 3))
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, L.Add()([a(inp), b(inp)]))
    with pytest.raises(ValueError, match=r"unknown layer 'a/nope'; valid layers: a, a/b_conv1, .*b/b_relu"):
        ow.OIPEngine(model, "a/nope")
    with pytest.raises(ValueError, match=r"layer name 'b_conv2' is used in several models: .*a/b_conv2, b/b_conv2"):
        ow.OIPEngine(model, "b_conv2")
    with pytest.raises(ValueError, match=r"layer 'other' \(Dense\) is not a layer of model"):
        ow.OIPEngine(model, L.Dense(2, name="other"))
    assert ow.OIPEngine(model, b.get_layer("b_conv2")).layer.name == "b/b_conv2"


def test_pickers_and_the_cli_show_nested_layers_by_model():
    keras.utils.set_random_seed(11)
    base = small_base("base", (16, 16, 3))
    model = keras.Sequential([base, L.GlobalAveragePooling2D(name="gap"), L.Dense(2, name="out")])
    ex = ow.OIPExplorer(model, "b_conv2")
    assert ex.layer == "base/b_conv2" and ex.layer_dropdown.value == "base/b_conv2"
    assert ("base / b_pool", "base/b_pool") in ex.layer_dropdown.options
    ex.layer = "b_pool"  # a unique plain name is taken as its path
    assert ex.layer == "base/b_pool" and ex.layer_dropdown.value == "base/b_pool"
    ex.close()
    infos = [i for i in ow.OIPEngine.layers(model) if i.kind == "maps"]
    assert layer_listing(infos) == "base; in base: base/b_conv1, base/b_pool, base/b_conv2, base/b_relu"


def test_the_zoo_command_takes_a_nested_layer_of_a_saved_transfer_model(tmp_path, capsys):
    from oipwidgets import cli

    keras.utils.set_random_seed(12)
    model = keras.Sequential([keras.Input((16, 16, 3)), small_base("base", (16, 16, 3)), L.GlobalAveragePooling2D(),
                              L.Dense(2, name="out")])
    model.save(tmp_path / "transfer.keras")
    args = ["zoo", "--model", str(tmp_path / "transfer.keras"), "--steps", "3", "--out", str(tmp_path / "z.png")]
    assert cli.main([*args, "--layer", "b_conv1"]) == 0
    assert "6 OIPs" in capsys.readouterr().out and (tmp_path / "z.png").exists()
    assert cli.main([*args, "--layer", "nope"]) == 2
    assert "layers with maps: base; in base: base/b_conv1, base/b_pool, base/b_conv2, base/b_relu" in (
        capsys.readouterr().err)
