"""Seconds per training epoch on the digits set: loopnet's backends and PyTorch CPU doing
the same training (same model, init, batch size, optimizer) in the same run.

    python benchmarks/train_epochs.py [--epochs 5]

Medians over epochs after the first (which includes compilation for numba). The Python
backend is timed on its first 3 minibatches and scaled to a whole epoch (a full epoch
takes minutes: that is the point of the other backends).
"""

import statistics
import sys
import time


import loopnet as ln
import loopnet.optim  # noqa: F401  (ln.optim below)
from loopnet import data as datasets, models, training


def loopnet_epochs(model_name, backend, epochs, config):
    data = datasets.load("digits", seed=0)
    net = models.build(model_name, data.input_shape, data.classes, seed=0)
    config = training.TrainConfig(**{**config.__dict__, "epochs": epochs})
    with ln.use(backend):
        state = training.train(net, data, config)
    seconds = [r["seconds"] for r in state.history]
    return statistics.median(seconds[1:] or seconds), net, data, training.accuracy(net, data.test)


def python_epoch_estimate(model_name, config, batches=3):
    data = datasets.load("digits", seed=0)
    net = models.build(model_name, data.input_shape, data.classes, seed=0)
    optimizer = ln.optim.make_optimizer(config.optimizer, net.params, config.lr, config.momentum)
    order = training.batches(len(data.train.x), config.batch_size, 0, 1)
    with ln.use("python"):
        start = time.perf_counter()
        for index in order[:batches]:
            net.set_batch(data.train.x[index], data.train.y[index])
            ln.forward(net.loss)
            ln.backward(net.loss)
            optimizer.step()
        elapsed = time.perf_counter() - start
    return elapsed / batches * len(order)


def torch_epochs(model_name, net, data, epochs, config):
    import torch

    torch.set_num_threads(2)
    if model_name == "mlp":
        layers = torch.nn.Sequential(torch.nn.Linear(64, 500), torch.nn.ReLU(), torch.nn.Linear(500, 10))
        shape = (-1, 64)
    else:
        channels = net.params[0].shape[0]
        layers = torch.nn.Sequential(torch.nn.Conv2d(1, channels, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                     torch.nn.Flatten(), torch.nn.Linear(channels * 9, 10))
        shape = (-1, 1, 8, 8)
    model = layers.double()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    x = torch.from_numpy(data.train.x).reshape(shape)
    y = torch.from_numpy(data.train.y)
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        for index in training.batches(len(x), config.batch_size, 0, epoch + 1):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[1:] or seconds)


def main(epochs=5):
    import numba

    numba.set_num_threads(2)
    print(f"seconds per digits epoch (1437 training images, batch 32, momentum SGD), medians of epochs 2..{epochs}")
    print(f"{'model':<8} {'backend':<16} {'s/epoch':>9} {'vs torch':>9}  test acc")
    for model_name, lr in (("mlp", 0.1), ("convnet", 0.05)):
        config = training.TrainConfig(lr=lr, optimizer="momentum", batch_size=32, lr_patience=0)
        t_numba, net, data, acc = loopnet_epochs(model_name, "numba", epochs, config)
        try:
            t_torch = torch_epochs(model_name, net, data, epochs, config)
        except ImportError:
            t_torch = None
        t_python = python_epoch_estimate(model_name, config)
        rows = [("loopnet numba", t_numba, f"{100 * acc:.1f}% after {epochs} epochs"),
                ("loopnet python", t_python, "estimated from 3 batches")]
        if t_torch:
            rows.append(("torch CPU", t_torch, ""))
        for backend, seconds, note in rows:
            ratio = f"{seconds / t_torch:.2f}x" if t_torch else "-"
            print(f"{model_name:<8} {backend:<16} {seconds:>9.4f} {ratio:>9}  {note}")


if __name__ == "__main__":
    main(int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 5)
