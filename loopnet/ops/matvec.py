"""matvec(A, x): deck 003's u = A x for one example, A (m, n) and x (n,) giving u (m,).

Deck 003, 'Scalar vs. Matrix Operations', writes y = sigma(A x + b) as loops over scalar
assignments. This op is its matrix-vector product and that product's backward loops, in
the slide's own names:

    forward    for i:    u.value[i] = 0
               for i,j:  u.value[i] += A.value[i,j] * x.value[j]
    backward   for i,j:  A.grad[i,j] += u.grad[i] * x.value[j]
               for i,j:  x.grad[j]   += u.grad[i] * A.value[i,j]

The bodies below are these statements with `.` written `_` (u_value[i] is u.value[i]), so
a breakpoint on a line stops at one scalar multiply-add of the slide. Each loop's grid is
the index of the element it writes: x.grad's loop runs over j outside and i inside (the
same terms as the slide's `for i,j`, added in another order), so every grid point owns
its writes and the points can run at once.

This is the column form of decks 000, 002 and 003 (A is out x in, x a column). affine is
the same math for a minibatch in loopnet's row form, Y[n,m] = b[m] + sum_d X[n,d] W[d,m]:
the slide's A[i,j] is affine's W[j,i] (its i is affine's m, its j is affine's d), and
affine adds the example index n, which deck 003's 'Minibatching' slide calls b.

The sums are added straight into u.value and x.grad in their dtype, as the slide writes
them; affine and matmul add long sums in float64 instead (see the README's Dtypes).
"""

from loopnet.loops import loop
from loopnet.op import Op


def matvec_forward(i, A_value, x_value, u_value):
    u_value[i] = 0
    for j in range(x_value.shape[0]):
        u_value[i] += A_value[i, j] * x_value[j]


def matvec_grad_A(i, j, x_value, u_grad, A_grad):
    A_grad[i, j] += u_grad[i] * x_value[j]


def matvec_grad_x(j, A_value, u_grad, x_grad):
    for i in range(u_grad.shape[0]):
        x_grad[j] += u_grad[i] * A_value[i, j]


class Matvec(Op):
    name = "matvec"
    inputs = ("A", "x")

    def shape(self, A, x):
        if len(A.shape) != 2 or len(x.shape) != 1:
            raise self.shape_error((A, x), "needs a matrix A (m, n) and a vector x (n,)")
        if A.shape[1] != x.shape[0]:
            raise self.shape_error((A, x), f"A has {A.shape[1]} columns but x has {x.shape[0]} entries")
        return (A.shape[0],)

    def forward(self, out, A, x):
        loop(matvec_forward, out.shape, A.value, x.value, out.value)

    def backward(self, out, A, x):
        if A.requires_grad:
            loop(matvec_grad_A, A.shape, x.value, out.grad, A.grad)
        if x.requires_grad:
            loop(matvec_grad_x, x.shape, A.value, out.grad, x.grad)


def matvec(A, x, name=None):
    """u = A x for a matrix A (m, n) and a vector x (n,): deck 003's loops, in the slide's names."""
    return Matvec().apply((A, x), name)
