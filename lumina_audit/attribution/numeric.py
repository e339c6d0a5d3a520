"""Elementary functions whose bits are the same on every machine (for ``lumina-attribution-v2``).

numpy's ``exp`` and ``log`` pick a vector implementation by CPU at run time (an AVX-512
machine may round the last bit differently from an AVX2 one), and ``math`` calls the C
library of the machine. A calibration must give the same bits everywhere, so the
transcendental functions it needs are computed here from IEEE-754 basic operations only
(``+ - * /``, ``sqrt``, ``frexp``, ``ldexp``, ``rint``, comparisons), each correctly
rounded by every conforming machine, in a fixed order. They are accurate to a few units in
the last place (tested against ``math``), which is far below anything a likelihood ratio
states; what matters is that they are *the same* everywhere.

Vector functions take and return float64 arrays (any shape); the ``*_scalar`` ones wrap them
for a Python float. Long sums use :func:`lane_sum`: one fixed order, vectorised, so a sum of
10**7 values costs milliseconds and its bits depend only on the values and their order.

- :func:`exp`: Cody-Waite reduction by ln 2, a degree-13 Taylor polynomial, ``ldexp``.
- :func:`log`: ``frexp``, then ``2 atanh(s)`` with ``s = (m - 1) / (m + 1)`` to degree 23.
- :func:`softplus` ``log(1 + exp(z))`` and :func:`sigmoid` ``1 / (1 + exp(-z))``, without overflow.
- :func:`lgamma` (Stirling series after shifting to x >= 10), :func:`betainc` (the regularised
  incomplete beta function, Lentz's continued fraction) and :func:`beta_quantile` (bisection to
  the last bit), which give Clopper-Pearson intervals.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "LN10",
    "LN2",
    "beta_quantile",
    "betainc",
    "LANES",
    "lane_sum",
    "exp",
    "exp_scalar",
    "lgamma",
    "log",
    "log_scalar",
    "pow10",
    "pow10_scalar",
    "sigmoid",
    "softplus",
]

F64 = npt.NDArray[np.float64]

LN2 = 0.6931471805599453  # the double nearest ln 2
LN10 = 2.302585092994046  # the double nearest ln 10
#: ln 2 split so that n * _LN2_HI is exact for |n| < 2**20 (fdlibm's constants).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.4426950408889634
#: 1/k! for k = 13 .. 0 (Horner order); the k = 14 term is below 2**-57 on |r| <= ln2 / 2.
_EXP_COEFFS = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))
#: 2 / (2k + 1) for k = 11 .. 0: log(m) = s * sum(c_k * s**(2k)), s**24 / 25 < 2**-60 for |s| <= 0.1716.
_LOG_COEFFS = tuple(2.0 / (2 * k + 1) for k in range(11, -1, -1))
_SQRT_HALF = 0.7071067811865476
_EXP_MAX = 709.782712893384  # exp overflows above
_EXP_MIN = -745.1332191019412  # exp is 0 below
#: Lanes of :func:`lane_sum`.
LANES = 4096


def _f64(x: npt.ArrayLike) -> F64:
    return np.asarray(x, dtype=np.float64)


def exp(x: npt.ArrayLike) -> F64:
    """e**x, elementwise (inf above 709.78, 0 below -745.13, nan for nan)."""
    x = _f64(x)
    xc = np.clip(np.where(np.isnan(x), 0.0, x), _EXP_MIN - 1.0, _EXP_MAX + 1.0)
    n = np.rint(xc * _INV_LN2)
    r = (xc - n * _LN2_HI) - n * _LN2_LO
    p = np.full_like(r, _EXP_COEFFS[0])
    for c in _EXP_COEFFS[1:]:
        p = p * r + c
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(p, n.astype(np.int64))
    out = np.where(x > _EXP_MAX, np.inf, out)
    out = np.where(x < _EXP_MIN, 0.0, out)
    return np.where(np.isnan(x), np.nan, out)


def log(x: npt.ArrayLike) -> F64:
    """The natural logarithm, elementwise (-inf at 0, nan below 0 or for nan, inf at inf)."""
    x = _f64(x)
    ok = np.isfinite(x) & (x > 0)
    xs = np.where(ok, x, 1.0)
    m, e = np.frexp(xs)  # xs = m * 2**e, 0.5 <= m < 1 (subnormals included)
    small = m < _SQRT_HALF
    m = np.where(small, m * 2.0, m)  # exact
    e = np.where(small, e - 1, e).astype(np.float64)
    f = m - 1.0  # exact (Sterbenz)
    s = f / (2.0 + f)
    z = s * s
    p = np.full_like(z, _LOG_COEFFS[0])
    for c in _LOG_COEFFS[1:]:
        p = p * z + c
    out = e * _LN2_HI + (e * _LN2_LO + s * p)
    out = np.where(x == 0.0, -np.inf, out)
    out = np.where(x == np.inf, np.inf, out)
    return np.where((x < 0) | np.isnan(x), np.nan, out)


def _log1p_unit(u: F64) -> F64:
    """log(1 + u) for 0 <= u <= 1, accurate for tiny u (the classic ``log(w) * u / (w - 1)``)."""
    w = 1.0 + u
    d = w - 1.0
    safe = np.where(d == 0.0, 1.0, d)
    return np.where(d == 0.0, u, log(w) * (u / safe))


def softplus(z: npt.ArrayLike) -> F64:
    """log(1 + e**z), elementwise, without overflow (0 at -inf, inf at inf)."""
    z = _f64(z)
    a = np.abs(z)
    tail = _log1p_unit(exp(-np.where(np.isfinite(a), a, 0.0)))  # log(1 + e**-|z|)
    out = np.maximum(z, 0.0) + np.where(np.isfinite(a), tail, 0.0)
    return np.where(np.isnan(z), np.nan, out)


def sigmoid(z: npt.ArrayLike) -> F64:
    """1 / (1 + e**-z), elementwise."""
    z = _f64(z)
    e = exp(-np.abs(z))  # in [0, 1]
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def pow10(x: npt.ArrayLike) -> F64:
    """10**x, elementwise, as ``exp(x * ln 10)``."""
    return exp(_f64(x) * LN10)


def exp_scalar(x: float) -> float:
    return float(exp(x))


def log_scalar(x: float) -> float:
    return float(log(x))


def pow10_scalar(x: float) -> float:
    return float(pow10(x))


def lane_sum(x: npt.ArrayLike) -> float:
    """The sum of every value of ``x`` (flattened) in one fixed order, whatever the machine.

    ``LANES`` running sums: lane ``i`` adds values ``i``, ``i + LANES``, ``i + 2 LANES``, ... left to
    right (elementwise IEEE additions, vectorised, never reassociated), then the lanes are summed
    exactly (``math.fsum``). The result depends only on the values and their order.
    """
    flat = _f64(x).reshape(-1)
    n = flat.shape[0]
    if n <= LANES:
        return math.fsum(flat.tolist())
    full = n - n % LANES
    rows = flat[:full].reshape(-1, LANES)
    acc = rows[0].copy()
    for r in rows[1:]:
        np.add(acc, r, out=acc)
    np.add(acc[: n - full], flat[full:], out=acc[: n - full])
    return math.fsum(acc.tolist())


# --------------------------------------------------------------------------- gamma and beta

#: Stirling series coefficients B_2k / (2k (2k - 1)) for k = 1..7.
_STIRLING = (1.0 / 12, -1.0 / 360, 1.0 / 1260, -1.0 / 1680, 1.0 / 1188, -691.0 / 360360, 1.0 / 156)
_HALF_LOG_2PI = 0.9189385332046728


def lgamma(x: float) -> float:
    """log Gamma(x) for x > 0 (Stirling's series after shifting x to at least 10)."""
    if not (x > 0) or not math.isfinite(x):
        raise ValueError(f"lgamma needs a finite x > 0, got {x!r}")
    shift = 0.0
    while x < 10.0:
        shift += log_scalar(x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = 0.0
    for c in reversed(_STIRLING):
        series = series * inv2 + c
    return (x - 0.5) * log_scalar(x) - x + _HALF_LOG_2PI + series * inv - shift


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), to the last bit."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 100000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) <= 2.0**-53:
            return h
    raise ArithmeticError(f"the incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (the Beta(a, b) distribution function at x)."""
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a > 0 and b > 0, got {a!r}, {b!r}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = exp_scalar(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log_scalar(x) + b * log_scalar(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The x in [0, 1] with I_x(a, b) = q, by bisection until the interval is two adjacent doubles.

    Returns the upper end of the final interval (the smallest double found with I_x >= q).
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"beta_quantile needs 0 < q < 1, got {q!r}")
    lo, hi = 0.0, 1.0
    for _ in range(2000):
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            break
        if betainc(a, b, mid) >= q:
            hi = mid
        else:
            lo = mid
    return hi
