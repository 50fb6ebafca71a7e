"""GANTrainer: one generator forward per step, PyTorch's DCGAN loop step for step (float64, torch
as the optional oracle), NaN safety, checkpoints, progress writers, argument checks."""
import numpy as np
import pytest

import minigraph as mg
from benchmarks.gan import LR, build_dcgan, dcgan_trainer, torch_dcgan, torch_dcgan_step
from minigraph import layers as L
from minigraph import learners

NZ, NGF, NDF, NC, SIZE, BATCH = 8, 8, 8, 1, 16, 6


def build(dtype=np.float64, seed=0):
    """PyTorch's DCGAN at 16x16 (ConvTranspose k4 s1 p0 then s2 p1, BatchNorm, ReLU, tanh; strided
    k4 convolutions, BatchNorm, LeakyReLU 0.2 and sigmoid in the discriminator; BCE; no biases)."""
    mg.set_seed(seed)
    return build_dcgan(SIZE, nz=NZ, ngf=NGF, ndf=NDF, nc=NC, dtype=dtype)


def batches(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [{"z": rng.standard_normal((BATCH, NZ, 1, 1)), "real": np.tanh(rng.standard_normal((BATCH, NC, SIZE, SIZE)))}
            for _ in range(steps)]


def statistics(net):
    """Every parameter and constant value of the graph, by (layer name, attribute)."""
    return {(n.scope[-1].name if n.scope else "", n.name, n.uid): n.value.copy()
            for n in (*net["d_loss"].parameters, *net["g_loss"].parameters, *net["d_loss"].constants)}


def test_ten_steps_match_pytorchs_dcgan_loop():
    torch = pytest.importorskip("torch")
    net = build()
    # PyTorch's DCGAN initialisation (normal(0, 0.02) weights, normal(1, 0.02) batch-norm scales)
    rng = np.random.default_rng(2)
    for layer in (*net["g_layers"], *net["d_layers"]):
        if isinstance(layer, L.BatchNormalization):
            layer.scale.value = 1 + 0.02 * rng.standard_normal(layer.scale.shape)
        else:
            layer.W.value = 0.02 * rng.standard_normal(layer.W.shape)
    netG, netD, pairs = torch_dcgan(net)
    assert len(pairs) == 9  # every weight-carrying layer: 3 transposed convolutions, 3 convolutions, 3 batch norms
    gan = dcgan_trainer(net)
    torch_step = torch_dcgan_step(netG, netD)  # PyTorch's examples/dcgan/main.py, one iteration
    for feed in batches(10):
        d_value, g_value = gan.train_minibatch(feed)
        errD, errG = torch_step(torch.from_numpy(feed["real"]), torch.from_numpy(feed["z"]))
        assert d_value == pytest.approx(errD, abs=1e-10, rel=1e-10)
        assert g_value == pytest.approx(errG, abs=1e-10, rel=1e-10)
    for module, layer in pairs:
        if isinstance(layer, L.BatchNormalization):
            np.testing.assert_allclose(layer.scale.value, module.weight.detach().numpy(), rtol=0, atol=1e-10)
            np.testing.assert_allclose(layer.bias.value, module.bias.detach().numpy(), rtol=0, atol=1e-10)
            np.testing.assert_allclose(layer.running_mean.value, module.running_mean.numpy(), rtol=0, atol=1e-10)
            np.testing.assert_allclose(layer.running_var.value, module.running_var.numpy(), rtol=0, atol=1e-10)
        else:
            np.testing.assert_allclose(layer.W.value, module.weight.detach().numpy(), rtol=0, atol=1e-10)
    assert gan.step_count == 10 and gan.total_number_of_samples_seen == 10 * BATCH
    assert gan.history["d_loss"][-1] == d_value and gan.previous_minibatch_g_loss_average == g_value


def test_the_generator_runs_once_per_step():
    """Batch normalization in the generator folds one minibatch per step into its running mean."""
    net = build()
    gan = dcgan_trainer(net)
    feed = batches(1)[0]
    bn = net["g_layers"][1]
    h = net["g_layers"][0](net["z"])  # the first transposed convolution again (shared weights)
    before = bn.running_mean.value.copy()
    batch_mean = h.eval({"z": feed["z"]}).mean(axis=(0, 2, 3))
    gan.train_minibatch(feed)
    np.testing.assert_allclose(bn.running_mean.value, 0.9 * before + 0.1 * batch_mean, rtol=1e-12)


def test_a_failed_step_changes_nothing():
    net = build()
    gan = dcgan_trainer(net)
    gan.train_minibatch(batches(1)[0])
    before = statistics(net)
    d_state = gan.d_learner.state_dict()
    bad = batches(1, seed=5)[0]
    bad["real"][0, 0, 0, 0] = np.nan
    with pytest.raises(mg.TrainingError, match="step 2: the loss"):
        gan.train_minibatch(bad)
    after = statistics(net)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=str(key))
    assert gan.d_learner.state_dict()["count"] == d_state["count"] and gan.step_count == 1


def test_a_failure_after_the_discriminator_update_puts_it_back(monkeypatch):
    """The generator's gradient is checked after the discriminator moved: that move is undone."""
    net = build()
    gan = dcgan_trainer(net)
    before = statistics(net)
    d_slots = [{k: v.copy() for k, v in s.items()} for s in gan.d_learner.slots]
    original = net["fake"].backward

    def poisoned(state, root_gradient=None, wrt=None):
        grads = original(state, root_gradient, wrt)
        first = next(iter(grads))
        grads[first] = np.full_like(grads[first], np.inf)
        return grads

    monkeypatch.setattr(net["fake"], "backward", poisoned)
    with pytest.raises(mg.TrainingError, match="step 1: the gradient of .* is not finite"):
        gan.train_minibatch(batches(1)[0])
    for key, value in statistics(net).items():
        np.testing.assert_array_equal(value, before[key], err_msg=str(key))
    for slots, saved in zip(gan.d_learner.slots, d_slots):
        for k in saved:
            np.testing.assert_array_equal(slots[k], saved[k])
    assert gan.d_learner.count == 0 and gan.step_count == 0


def test_checkpoint_continues_bit_for_bit(tmp_path):
    feeds = batches(6)
    net = build()
    gan = dcgan_trainer(net)
    for feed in feeds[:3]:
        gan.train_minibatch(feed)
    gan.save_checkpoint(tmp_path / "gan.ckpt")
    straight = [gan.train_minibatch(feed) for feed in feeds[3:]]
    net2 = build(seed=7)  # other initial values, restored from the file
    gan2 = dcgan_trainer(net2)
    gan2.restore_from_checkpoint(tmp_path / "gan.ckpt")
    assert gan2.step_count == 3 and gan2.history["d_loss"] == gan.history["d_loss"][:3]
    resumed = [gan2.train_minibatch(feed) for feed in feeds[3:]]
    assert resumed == straight
    for (_, a), (_, b) in zip(sorted(statistics(net).items(), key=lambda kv: kv[0][2]),
                              sorted(statistics(net2).items(), key=lambda kv: kv[0][2])):
        np.testing.assert_array_equal(a, b)


def test_progress_writers_get_both_losses(tmp_path):
    from minigraph.logging.printer import ProgressPrinter
    printer = ProgressPrinter(freq=1, log_to_file=tmp_path / "log.txt")
    net = build()
    gan = dcgan_trainer(net, progress_writers=[printer])
    d_value, g_value = gan.train_minibatch(batches(1)[0])
    gan.summarize_training_progress()
    printer.close()
    text = (tmp_path / "log.txt").read_text()
    assert "d_loss" in text and "g_loss" in text
    assert gan.discriminator_progress.previous_minibatch_loss_average == d_value
    assert gan.generator_progress.previous_minibatch_loss_average == g_value
    assert gan.generator_progress.step_count == 1 and gan.generator_progress.total_number_of_samples_seen == BATCH


def test_test_minibatch_and_reported_figures():
    net = build()
    gan = dcgan_trainer(net)
    feed = batches(1)[0]
    before = statistics(net)
    d_value, g_value = gan.test_minibatch(feed)
    for key, value in statistics(net).items():
        np.testing.assert_array_equal(value, before[key])
    fake = net["fake"].eval({"z": feed["z"]})
    d_fake = net["d_fake"].eval({"z": feed["z"]})
    assert g_value == pytest.approx(float(-np.log(d_fake).mean()), rel=1e-12)
    assert d_value == pytest.approx(net["d_loss"].eval(feed).mean(), rel=1e-12)
    assert fake.shape == (BATCH, NC, SIZE, SIZE)
    gan.train_minibatch(feed)
    assert 0 < gan.previous_minibatch_d_real_average < 1 and 0 < gan.previous_minibatch_d_fake_average < 1


def test_argument_errors():
    net = build()
    d_learner, g_learner = learners.adam(net["discriminator"], LR), learners.adam(net["generator"], LR)
    args = [net[k] for k in ("fake", "d_real", "d_fake", "d_loss", "g_loss")]
    with pytest.raises(TypeError, match="d_loss must be a graph node"):
        mg.GANTrainer(*args[:3], "loss", args[4], d_learner, g_learner)
    with pytest.raises(TypeError, match="g_learner must be a learner"):
        mg.GANTrainer(*args, d_learner, None)
    with pytest.raises(mg.GraphError, match="d_learner is in the generator's graph"):
        mg.GANTrainer(*args, g_learner, d_learner)
    with pytest.raises(mg.GraphError, match="g_loss .* does not depend on d_fake"):
        mg.GANTrainer(*args[:4], net["d_real"] * 1.0, d_learner, g_learner)
    gan = mg.GANTrainer(*args, d_learner, g_learner)
    with pytest.raises(mg.GraphError, match="feed key 'nope' is an input of neither"):
        gan.train_minibatch({**batches(1)[0], "nope": np.zeros((BATCH, 1))})
    with pytest.raises(mg.GraphError, match="needs a value for Input 'real'"):
        gan.train_minibatch({"z": batches(1)[0]["z"]})
    with pytest.raises(TypeError, match="call train_minibatch"):
        gan.fit({"real": np.zeros((4, NC, SIZE, SIZE))})
    assert gan.step_count == 0


def test_update_bn_matches_pytorchs_swa_update_bn():
    """mg.update_bn recomputes the generator's batch-normalization statistics as
    torch.optim.swa_utils.update_bn does (momentum None: every minibatch weighted equally)."""
    torch = pytest.importorskip("torch")
    from torch.optim.swa_utils import update_bn

    net = build()
    netG, _, pairs = torch_dcgan(net)
    feeds = [{"z": feed["z"][:n]} for feed, n in zip(batches(3, seed=5), (BATCH, BATCH - 1, 3))]
    assert mg.update_bn(net["fake"], feeds) == sum(1 for _, layer in pairs if isinstance(layer, L.BatchNormalization)
                                                   and layer in net["g_layers"])
    update_bn([torch.from_numpy(feed["z"]) for feed in feeds], netG)
    compared = 0
    for module, layer in pairs:
        if isinstance(layer, L.BatchNormalization) and layer in net["g_layers"]:
            np.testing.assert_allclose(layer.running_mean.value, module.running_mean.numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(layer.running_var.value, module.running_var.numpy(), rtol=1e-12, atol=1e-14)
            compared += 1
    assert compared >= 2
