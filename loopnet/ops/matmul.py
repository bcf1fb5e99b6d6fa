"""matmul(A, B): C = A B, for A (n, k) and B (k, m), giving C (n, m).

    forward    for i,j:  C[i,j]  = sum_k A[i,k] * B[k,j]
    backward   for i,k:  dA[i,k] += sum_j dC[i,j] * B[k,j]
               for k,j:  dB[k,j] += sum_i A[i,k] * dC[i,j]

Each backward loop is written in gather form: the grid runs over the elements of the
gradient it writes, and the sum inside gathers every output that read that element.
(Deck 003, 'Scalar vs. Matrix Operations', writes the matrix-vector backward in scatter
form, two loops over i,j: A.grad[i,j] += u.grad[i] x.value[j] and x.grad[j] += u.grad[i]
A.value[i,j]; the same form for a matrix product would be `for i,j,k: dA[i,k] += dC[i,j] B[k,j]`. It adds the same terms in another
order; gather form lets every grid point run at once without races.)

Memory order: a sum's index should walk along rows (the last axis), so an operand whose
summed index is its first axis is passed transposed: BT[j,k] = B[k,j] (see
`loopnet.loops.transposed`). The math is unchanged; the inner loop reads memory in order.

Each loop also declares, in one line, the contraction it computes (`loopnet.schedule`), so
a compiled backend may run it in register-tiled blocks; the body stays the definition.

Accuracy: each sum accumulates in float64 (`acc = scalar.zero64()`) and is stored in C's
dtype, so a float32 product over a long axis does not drift (issue 14).
"""

from loopnet import scalar
from loopnet.loops import loop, transposed
from loopnet.op import Op
from loopnet.schedule import contraction


@contraction("C[i,j] = sum_k A[i,k] * BT[j,k]")
def matmul_forward(i, j, A, BT, C):
    acc = scalar.zero64()  # a long sum: float64 whatever the dtype (stored as C's dtype)
    for k in range(A.shape[1]):
        acc += A[i, k] * BT[j, k]  # BT[j,k] = B[k,j]
    C[i, j] = acc


@contraction("dA[i,k] += sum_j dC[i,j] * B[k,j]")
def matmul_grad_A(i, k, B, dC, dA):
    acc = scalar.zero64()
    for j in range(B.shape[1]):
        acc += dC[i, j] * B[k, j]
    dA[i, k] += acc


@contraction("dB[k,j] += sum_i AT[k,i] * dCT[j,i]")
def matmul_grad_B(k, j, AT, dCT, dB):
    acc = scalar.zero64()  # a sum over every row of A: float64, as every long sum
    for i in range(AT.shape[1]):
        acc += AT[k, i] * dCT[j, i]  # A[i,k] * dC[i,j]
    dB[k, j] += acc


class Matmul(Op):
    name = "matmul"
    inputs = ("A", "B")

    def shape(self, A, B):
        if len(A.shape) != 2 or len(B.shape) != 2:
            raise self.shape_error((A, B), "both inputs must be matrices (2-D)")
        if A.shape[1] != B.shape[0]:
            raise self.shape_error((A, B), f"A's columns ({A.shape[1]}) must equal B's rows ({B.shape[0]})")
        return (A.shape[0], B.shape[1])

    def forward(self, out, A, B):
        loop(matmul_forward, out.shape, A.value, transposed(B.value), out.value)

    def backward(self, out, A, B):
        if A.requires_grad:
            loop(matmul_grad_A, A.shape, B.value, out.grad, A.grad)
        if B.requires_grad:
            loop(matmul_grad_B, B.shape, transposed(A.value), transposed(out.grad), B.grad)


def matmul(A, B, name=None):
    """A B for matrices A (n, k), B (k, m): C[i,j] = sum_k A[i,k] B[k,j]."""
    return Matmul().apply((A, B), name)
