"""Tutorial 7: deck 000's MLP, Affine(500) -> ReLU -> Affine(10), on handwritten digits.

scikit-learn's bundled 8x8 digits (1797 images, pixels / 16), the Numba backend (the same
loops, compiled). `python cli.py train mlp` does the full 30 epochs (98% test accuracy);
here 5 epochs keep it quick. Run: `python tutorials/07_mlp_digits.py`.
"""

import loopnet as ln
from loopnet import data, models, training

digits = data.load("digits", seed=0)
print(f"{len(digits.train.x)} training images of {digits.input_shape}, {digits.classes} classes")
net = models.build("mlp", digits.input_shape, digits.classes, width=500, seed=0)
config = training.TrainConfig(epochs=5, lr=0.1, optimizer="momentum", batch_size=32)
with ln.use("numba"):
    state = training.train(net, digits, config,
                           on_epoch=lambda r: print(f"epoch {r['epoch']}: loss {r['train_loss']:.3f}, "
                                                    f"validation accuracy {100 * r['val_accuracy']:.1f}%"))
    test_accuracy = training.accuracy(net, digits.test)
print(f"test accuracy after 5 epochs: {100 * test_accuracy:.1f}%")
assert test_accuracy > 0.9
