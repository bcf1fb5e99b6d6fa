"""Tutorial 4: XOR, first with deck 001's hand-set weights, then learned from scratch.

Run: `python tutorials/04_xor.py` (Python backend, a second or so).
"""

import numpy as np

import loopnet as ln
from loopnet import data, models, training
from loopnet.explain import find_node
from loopnet.targets import build_target

# Hand-set: h = relu(X W + c) with W = [[1,1],[1,1]], c = [0,-1]; out = h v with v = [1,-2].
loss = build_target("xor")
out = find_node(loss, "out")
print("hand-set weights give", ln.forward(out).ravel())
assert ln.forward(out).ravel().tolist() == [0.0, 1.0, 1.0, 0.0]

# Learned: the 2-2-1 network (tanh hidden layer, sigmoid output, binary cross-entropy)
# from a random initialisation, by momentum SGD on the four examples.
xor = data.load("xor")
net = models.build("xor", xor.input_shape, xor.classes, seed=0)
with ln.use("python"):
    state = training.train(net, xor, training.TrainConfig(epochs=300, lr=0.5, optimizer="momentum",
                                                           batch_size=4, lr_patience=0))
predictions = net.predict(xor.test.x)
print(f"learned: predictions {predictions.tolist()}, final loss {state.history[-1]['train_loss']:.4f}")
assert np.array_equal(predictions, xor.test.y)
