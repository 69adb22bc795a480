"""How the image climbs (engine/climb.py, optimizers.py, the loop's states): the article's climb is unchanged,
Adam is exact and per image, and what a climb cannot run is refused up front."""

import numpy as np
import pytest
import tensorflow as tf

import oipwidgets as ow
from oipwidgets.engine.climb import Climb
from oipwidgets.engine.optimizers import Adam, RMSAscent, optimizer


def eager_adam_steps(engine, map_index, start, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam ascent written out by hand (eager), with the input mode's re-standardisation after each step."""
    x = tf.constant(start[None], tf.float32)
    m = tf.zeros_like(x)
    v = tf.zeros_like(x)
    for t in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(engine.probe(x)[..., map_index])
        g = tape.gradient(loss, x)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** (t + 1)), v / (1 - beta2 ** (t + 1))
        x = tf.image.per_image_standardization(x + lr * m_hat / (tf.sqrt(v_hat) + eps))
    return x.numpy()[0]


def test_adam_steps_equal_a_hand_written_eager_adam(engine):
    start = ow.MultiScaleNoise().sample((1, 28, 28, 1), seed=3)[0]
    result = engine.run(5, steps=6, start=start, optimizer="adam", epsilon=0.05)
    np.testing.assert_allclose(result.image, eager_adam_steps(engine, 5, start, 6, 0.05), atol=2e-5)
    assert result.params["optimizer"] == "adam" and result.params["param"] == "pixel"


def test_adam_in_a_batch_equals_each_map_alone(engine):
    batch = engine.run_layer([2, 3, 9], steps=30, seed=1, optimizer=Adam(beta1=0.8), epsilon=0.05)
    for r in batch:
        alone = engine.run(r.params["map"], steps=30, seed=1, optimizer=Adam(beta1=0.8), epsilon=0.05)
        np.testing.assert_allclose(r.image, alone.image, atol=1e-5)


def test_the_article_climb_is_the_default_and_keeps_its_numbers(engine):
    default = engine.run(7, steps=40, seed=2)
    explicit = engine.run(7, steps=40, seed=2, param="pixel", transforms=None, optimizer=RMSAscent())
    np.testing.assert_array_equal(default.image, explicit.image)
    assert Climb.make("pixel", None, "rms", (28, 28, 1)).article
    assert not Climb.make("pixel", None, "adam", (28, 28, 1)).article


def test_what_a_climb_cannot_run_is_refused_before_any_work(engine):
    with pytest.raises(ValueError, match="strategy 'multiscale' adds noise .* only the 'pixel' parameterisation "
                                         "with the 'rms' step"):
        engine.run(0, steps=3, strategy="multiscale", optimizer="adam")
    with pytest.raises(ValueError, match=r"unknown optimizer 'sgd'; valid: rms, adam or an Optimizer"):
        engine.run(0, steps=3, optimizer="sgd")
    with pytest.raises(ValueError, match=r"unknown parameterization 'wavelet'; valid: pixel"):
        engine.run(0, steps=3, param="wavelet")
    with pytest.raises(ValueError, match=r"unknown transforms 'all'; valid: None, 'standard' or a Transform"):
        engine.run(0, steps=3, transforms="all")
    for bad in (dict(beta1=1.0), dict(beta2=-0.1), dict(eps=0.0)):
        with pytest.raises(ValueError, match="Adam"):
            Adam(**bad)
    assert optimizer("adam").key() == Adam().key() != Adam(beta1=0.5).key()


def test_a_diverse_batch_differs_more_than_one_seed_alone(engine):
    maps = [5] * 3
    plain = engine.run_layer(maps, seed=[0, 1, 2], steps=60)
    diverse = engine.run_layer(maps, seed=[0, 1, 2], steps=60, objective=ow.MapMean(maps) + 2.0 * ow.Diversity())

    def spread(result):
        flat = np.stack([r.image.ravel() for r in result])
        return np.mean([np.linalg.norm(flat[i] - flat[j]) for i in range(3) for j in range(i + 1, 3)])

    assert spread(diverse) > spread(plain)
    assert all(np.isfinite(r.image).all() for r in diverse)


def test_the_zoo_command_takes_the_climb(tmp_path, capsys):
    from oipwidgets import cli

    out = tmp_path / "zoo.png"
    argv = ["zoo", "--layer", "Conv2D_1", "--steps", "5", "--param", "fourier", "--transforms", "standard",
            "--optimizer", "adam", "--epsilon", "0.05", "--out", str(out), "--html", str(tmp_path / "zoo.html")]
    assert cli.main(argv) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "fourier" in (tmp_path / "zoo.html").read_text()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["zoo", "--param", "wavelet"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'wavelet' (choose from 'pixel', 'fourier', 'maco')" in capsys.readouterr().err


def test_the_explorer_climbs_as_set_and_shows_diverse_oips_side_by_side(mnist):
    ex = ow.OIPExplorer(mnist, "Conv2D_3", map_index=5, steps=20, seed=2)
    assert ex.param_dropdown.options == ("pixel", "fourier", "maco")
    ex.param_dropdown.value, ex.optimizer_dropdown.value, ex.transforms_dropdown.value = "fourier", "adam", "standard"
    assert (ex.param, ex.optimizer, ex.transforms) == ("fourier", "adam", "standard")
    ex.epsilon = 0.05
    one = ex.run(wait=True)
    assert one.params["param"].startswith("fourier") and one.params["transforms"].startswith("pad 3 px")
    assert ex.diverse_box.children == ()
    ex.diversity, ex.smoothness = 3, 0.1
    first = ex.run(wait=True)
    assert [r.params["seed"] for r in ex._diverse] == [2, 3, 4] and first is ex._diverse[0]
    assert "diversity" in first.params["objective"] and "total variation" in first.params["objective"]
    assert ex.diverse_grid.cols == 3 and len(ex.diverse_box.children) == 2
    shown = [ex.diverse_grid.pixels(k) for k in range(3)]
    assert all(p.shape[:2] == shown[0].shape[:2] for p in shown) and not np.array_equal(shown[0], shown[1])
    with pytest.raises(Exception, match="diversity must be a whole number from 1 to 8; got 9"):
        ex.diversity = 9


def test_the_explorer_draws_the_relative_change_with_its_criterion_and_convergence(mnist):
    from oipwidgets.widgets.curves import FLOOR, relative_change

    np.testing.assert_allclose(relative_change([1.0, 2.0, 2.0, 1.0]), [0.5 / (1 + 5e-8), 0.0, 1.0 / (1 + 1e-7)],
                               rtol=1e-6)
    ex = ow.OIPExplorer(mnist, "Conv2D_3", map_index=2, steps=300, seed=1)
    r = ex.run(wait=True)
    curves = ex.curves
    assert r.converged_at is not None  # this map converges within 300 steps
    np.testing.assert_allclose(curves.change.y, np.maximum(relative_change(r.losses), FLOOR), rtol=1e-6)
    assert list(curves.criterion.y) == [5e-4, 5e-4] and list(curves.converged.x) == [r.converged_at] * 2
    assert type(curves.change_figure.axes[1].scale).__name__ == "LogScale"
    assert curves.figure.axes[1].label_offset == "52px"  # bqplot puts it left of a left axis: clear of the ticks
    curves.toggle.value = "relative change"
    assert curves.holder.children == (curves.change_figure,)
    curves.toggle.value = "objective"
    assert curves.holder.children == (curves.figure,)
