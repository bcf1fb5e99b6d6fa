"""bmm(A, B, transpose_b=False): deck 003's higher-order tensor contraction.

A (H, I, K) and B (H, K, J) give U (H, I, J), one matrix product per h, as torch.bmm.
Deck 003 ('Scalar vs. Matrix Operations', its higher-order tensor example) writes
`for h,i,j,k: U.value[h,i,j] += A.value[h,i,k] * B.value[h,j,k]`: B indexed [h,j,k], which
is transpose_b=True here. Its backward loops write `U.grad +=`, `A.grad +=` and `B.grad +=`
without the left-hand indices; they are [h,i,j], [h,i,k] and [h,j,k], as below. With
transpose_b=True:

    forward    for h,i,j:  U[h,i,j]  = sum_k A[h,i,k] * B[h,j,k]
    backward   for h,i,k:  dA[h,i,k] += sum_j dU[h,i,j] * B[h,j,k]
               for h,j,k:  dB[h,j,k] += sum_i dU[h,i,j] * A[h,i,k]

For transpose_b=False the loops read a transposed copy BT[h,j,k] = B[h,k,j] (so the sum
over k walks a row), and B's gradient is gathered in B's own layout:
               for h,k,j:  dB[h,k,j] += sum_i A[h,i,k] * dU[h,i,j]

Each loop's `@contraction` line restates its sum (`loopnet.schedule`), so the CUDA backend
may run it as shared-memory tiles, one product per h.

Accuracy: each sum accumulates in float64 (`acc = scalar.zero64()`) and is stored in the
array's dtype.
"""

from loopnet import scalar
from loopnet.loops import loop, scratch
from loopnet.op import Op
from loopnet.schedule import contraction


@contraction("U[h,i,j] = sum_k A[h,i,k] * BT[h,j,k]")
def bmm_forward(h, i, j, A, BT, U):
    acc = scalar.zero64()
    for k in range(A.shape[2]):
        acc += A[h, i, k] * BT[h, j, k]
    U[h, i, j] = acc


@contraction("dA[h,i,k] += sum_j dU[h,i,j] * BT[h,j,k]")
def bmm_grad_A(h, i, k, BT, dU, dA):
    acc = scalar.zero64()
    for j in range(dU.shape[2]):
        acc += dU[h, i, j] * BT[h, j, k]
    dA[h, i, k] += acc


@contraction("dBT[h,j,k] += sum_i dU[h,i,j] * A[h,i,k]")
def bmm_grad_BT(h, j, k, A, dU, dBT):
    acc = scalar.zero64()
    for i in range(A.shape[1]):
        acc += dU[h, i, j] * A[h, i, k]
    dBT[h, j, k] += acc


@contraction("dB[h,k,j] += sum_i A[h,i,k] * dU[h,i,j]")
def bmm_grad_B(h, k, j, A, dU, dB):
    acc = scalar.zero64()
    for i in range(A.shape[1]):
        acc += A[h, i, k] * dU[h, i, j]
    dB[h, k, j] += acc


def transpose_last_two(h, j, k, B, BT):
    BT[h, j, k] = B[h, k, j]


class Bmm(Op):
    name = "bmm"
    inputs = ("A", "B")

    def __init__(self, transpose_b):
        self.transpose_b = bool(transpose_b)

    def shape(self, A, B):
        if len(A.shape) != 3 or len(B.shape) != 3:
            raise self.shape_error((A, B), "needs A (H, I, K) and B (H, K, J), or B (H, J, K) with transpose_b=True")
        k_of_b = B.shape[2] if self.transpose_b else B.shape[1]
        if A.shape[0] != B.shape[0] or A.shape[2] != k_of_b:
            raise self.shape_error((A, B), f"A's H and K ({A.shape[0]}, {A.shape[2]}) must match B's "
                                           f"({B.shape[0]}, {k_of_b}) (transpose_b={self.transpose_b})")
        return (A.shape[0], A.shape[1], B.shape[1] if self.transpose_b else B.shape[2])

    def _bt(self, B):
        if self.transpose_b:
            return B.value
        BT = scratch((B.shape[0], B.shape[2], B.shape[1]), B.dtype)
        loop(transpose_last_two, BT.shape, B.value, BT)
        return BT

    def forward(self, out, A, B):
        loop(bmm_forward, out.shape, A.value, self._bt(B), out.value)

    def backward(self, out, A, B):
        if A.requires_grad:
            loop(bmm_grad_A, A.shape, self._bt(B), out.grad, A.grad)
        if B.requires_grad:
            body = bmm_grad_BT if self.transpose_b else bmm_grad_B
            loop(body, B.shape, A.value, out.grad, B.grad)


def bmm(A, B, transpose_b=False, name=None):
    """One matrix product per leading index: (H, I, K) x (H, K, J) -> (H, I, J)."""
    return Bmm(transpose_b).apply((A, B), name)
