"""GANTrainer: one generator forward per step, PyTorch's DCGAN loop step for step (float64, torch
as the optional oracle), NaN safety, checkpoints, progress writers, argument checks."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph import learners

NZ, NGF, NDF, NC, SIZE, BATCH = 8, 8, 8, 1, 16, 6
LR, BETA1 = 2e-4, 0.5


def leaky(x):
    return mg.leaky_relu(x, 0.2)


def build(dtype=np.float64, seed=0):
    """The DCGAN of PyTorch's example at 16x16: ConvTranspose k4 (s1 p0, then s2 p1), BatchNorm,
    ReLU, tanh; the discriminator strided k4 convolutions, BatchNorm, LeakyReLU 0.2, sigmoid; BCE."""
    mg.set_seed(seed)
    z = mg.input_variable((NZ, 1, 1), dtype=dtype, name="z")
    real = mg.input_variable((NC, SIZE, SIZE), dtype=dtype, name="real")
    g_layers = [
        L.ConvolutionTranspose((4, 4), NGF * 2, bias=False, name="g1"),
        L.BatchNormalization(map_rank=1, momentum=0.1, name="g1_bn"),
        L.ConvolutionTranspose((4, 4), NGF, strides=2, pad=True, output_shape=8, bias=False, name="g2"),
        L.BatchNormalization(map_rank=1, momentum=0.1, name="g2_bn"),
        L.ConvolutionTranspose((4, 4), NC, strides=2, pad=True, output_shape=SIZE, bias=False, name="g3"),
    ]
    generator = L.Sequential([g_layers[0], g_layers[1], mg.relu, g_layers[2], g_layers[3], mg.relu, g_layers[4],
                              mg.tanh], name="generator")
    d_layers = [
        L.Convolution((4, 4), NDF, strides=2, pad=True, bias=False, name="d1"),
        L.Convolution((4, 4), NDF * 2, strides=2, pad=True, bias=False, name="d2"),
        L.BatchNormalization(map_rank=1, momentum=0.1, name="d2_bn"),
        L.Convolution((4, 4), 1, bias=False, name="d3"),
    ]
    discriminator = L.Sequential([d_layers[0], leaky, d_layers[1], d_layers[2], leaky, d_layers[3], mg.sigmoid],
                                 name="discriminator")
    fake = generator(z)
    d_real, d_fake = discriminator(real), discriminator(fake)
    d_loss = mg.plus(mg.binary_cross_entropy(d_real, 1.0), mg.binary_cross_entropy(d_fake, 0.0), name="d_loss")
    g_loss = mg.binary_cross_entropy(d_fake, 1.0, name="g_loss")
    return dict(z=z, real=real, fake=fake, d_real=d_real, d_fake=d_fake, d_loss=d_loss, g_loss=g_loss,
                generator=generator, discriminator=discriminator, g_layers=g_layers, d_layers=d_layers)


def gan_trainer(net, **kwargs):
    return mg.GANTrainer(net["fake"], net["d_real"], net["d_fake"], net["d_loss"], net["g_loss"],
                         learners.adam(net["discriminator"], LR, momentum=BETA1),
                         learners.adam(net["generator"], LR, momentum=BETA1), **kwargs)


def batches(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [{"z": rng.standard_normal((BATCH, NZ, 1, 1)), "real": np.tanh(rng.standard_normal((BATCH, NC, SIZE, SIZE)))}
            for _ in range(steps)]


def statistics(net):
    """Every parameter and constant value of the graph, by (layer name, attribute)."""
    return {(n.scope[-1].name if n.scope else "", n.name, n.uid): n.value.copy()
            for n in (*net["d_loss"].parameters, *net["g_loss"].parameters, *net["d_loss"].constants)}


def torch_dcgan(net):
    """The same networks in PyTorch (float64) with minigraph's initial weights."""
    import torch
    from torch import nn
    g, d = net["g_layers"], net["d_layers"]
    netG = nn.Sequential(nn.ConvTranspose2d(NZ, NGF * 2, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(),
                         nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(),
                         nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh()).double()
    netD = nn.Sequential(nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
                         nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2),
                         nn.Conv2d(NDF * 2, 1, 4, 1, 0, bias=False), nn.Sigmoid()).double()
    pairs = [(netG[0], g[0]), (netG[3], g[2]), (netG[6], g[4]), (netD[0], d[0]), (netD[2], d[1]), (netD[5], d[3])]
    bns = [(netG[1], g[1]), (netG[4], g[3]), (netD[3], d[2])]
    with torch.no_grad():
        for module, layer in pairs:
            module.weight.copy_(torch.from_numpy(layer.W.value))
        for module, layer in bns:
            module.weight.copy_(torch.from_numpy(layer.scale.value))
            module.bias.copy_(torch.from_numpy(layer.bias.value))
    return netG, netD, pairs, bns


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
    netG, netD, pairs, bns = torch_dcgan(net)
    gan = gan_trainer(net)
    criterion = torch.nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=LR, betas=(BETA1, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=LR, betas=(BETA1, 0.999))
    for feed in batches(10):
        d_value, g_value = gan.train_minibatch(feed)
        # PyTorch's examples/dcgan/main.py, one iteration
        real, noise = torch.from_numpy(feed["real"]), torch.from_numpy(feed["z"])
        ones, zeros = torch.ones(BATCH, dtype=torch.float64), torch.zeros(BATCH, dtype=torch.float64)
        netD.zero_grad()
        errD_real = criterion(netD(real).view(-1), ones)
        errD_real.backward()
        fake = netG(noise)
        errD_fake = criterion(netD(fake.detach()).view(-1), zeros)
        errD_fake.backward()
        errD = errD_real + errD_fake
        optD.step()
        netG.zero_grad()
        errG = criterion(netD(fake).view(-1), ones)
        errG.backward()
        optG.step()
        assert d_value == pytest.approx(errD.item(), abs=1e-10, rel=1e-10)
        assert g_value == pytest.approx(errG.item(), abs=1e-10, rel=1e-10)
    for module, layer in pairs:
        np.testing.assert_allclose(layer.W.value, module.weight.detach().numpy(), rtol=0, atol=1e-10)
    for module, layer in bns:
        np.testing.assert_allclose(layer.scale.value, module.weight.detach().numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(layer.bias.value, module.bias.detach().numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(layer.running_mean.value, module.running_mean.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(layer.running_var.value, module.running_var.numpy(), rtol=0, atol=1e-10)
    assert gan.step_count == 10 and gan.total_number_of_samples_seen == 10 * BATCH
    assert gan.history["d_loss"][-1] == d_value and gan.previous_minibatch_g_loss_average == g_value


def test_the_generator_runs_once_per_step():
    """Batch normalization in the generator folds one minibatch per step into its running mean."""
    net = build()
    gan = gan_trainer(net)
    feed = batches(1)[0]
    bn = net["g_layers"][1]
    h = net["g_layers"][0](net["z"])  # the first transposed convolution again (shared weights)
    before = bn.running_mean.value.copy()
    batch_mean = h.eval({"z": feed["z"]}).mean(axis=(0, 2, 3))
    gan.train_minibatch(feed)
    np.testing.assert_allclose(bn.running_mean.value, 0.9 * before + 0.1 * batch_mean, rtol=1e-12)


def test_a_failed_step_changes_nothing():
    net = build()
    gan = gan_trainer(net)
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
    gan = gan_trainer(net)
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
    gan = gan_trainer(net)
    for feed in feeds[:3]:
        gan.train_minibatch(feed)
    gan.save_checkpoint(tmp_path / "gan.ckpt")
    straight = [gan.train_minibatch(feed) for feed in feeds[3:]]
    net2 = build(seed=7)  # other initial values, restored from the file
    gan2 = gan_trainer(net2)
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
    gan = gan_trainer(net, progress_writers=[printer])
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
    gan = gan_trainer(net)
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
