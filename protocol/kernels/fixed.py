"""Integer helpers shared by the kernels (MicroPython has no math.isqrt and no int.bit_length).

All arguments and results are small ints: 0 <= v < 2**30.
"""


def isqrt(v):
    """floor(sqrt(v)) for 0 <= v < 2**30, bit by bit (15 rounds, no division, no allocation)."""
    if v <= 0:
        return 0
    r = 0
    b = 1 << 28
    while b > v:
        b >>= 2
    while b:
        t = r + b
        if v >= t:
            v -= t
            r = (r >> 1) + b
        else:
            r >>= 1
        b >>= 2
    return r


def sqrt_mean_round(total, n):
    """round(sqrt(total / n)) for total >= 0, n > 0 (half rounds up), exact: floor(sqrt(floor(x))) ==
    floor(sqrt(x)) for real x >= 0, so floor(2*sqrt(total/n)) = isqrt((4*total)//n). Needs total < 2**28."""
    if n <= 0 or total <= 0:
        return 0
    return (isqrt((total << 2) // n) + 1) >> 1


def log2_floor(v):
    """floor(log2(v)) for v >= 1 (MicroPython has no int.bit_length)."""
    k = 0
    while v > 1:
        v >>= 1
        k += 1
    return k
