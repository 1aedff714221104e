"""The pure-Python sample loop of protocol.kernels.ppg (filters and Elgendi detector; the algorithm is described
there): what CPython and the host's tools run, and a badge only if the viper loop (_ppg_viper) fails to load.

A module of its own so a badge running the viper loop never loads it: on a badge whose firmware is .mpy files on
the filesystem, loaded bytecode lives on the heap. Like _ppg_viper it names its own copies of the kernel's state
and config slots (a const() folds only inside the module that defines it); the vectors hold all three loops to the
same results.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_M20 = const((1 << 20) - 1)
_U_LIMIT = const(1 << 12)
_U_LOW = const(1 << 9)
_SHIFT_MAX = const(12)
_SENTINEL = const(-(1 << 29))

# state slots (protocol.kernels.ppg S_N and _S_*)
_S_N = const(0)
_S_DC = const(1)
_S_SHIFT = const(2)
_S_PK = const(3)
_S_PCNT = const(4)
_S_B1 = const(5)
_S_S1 = const(15)
_S_S2 = const(16)
_S_ACT = const(17)
_S_BLEN = const(18)
_S_PKV = const(19)
_S_PKN = const(20)
_S_INIT = const(21)
_S_EV = const(22)

# config slots (protocol.kernels.ppg C_* and _C_*)
_C_B0 = const(0)
_C_B1 = const(1)
_C_B2 = const(2)
_C_A1 = const(3)
_C_A2 = const(4)
_C_A21 = const(5)
_C_A22 = const(6)
_C_W1 = const(7)
_C_W2 = const(8)
_C_D = const(9)
_C_MASK = const(10)
_C_KDC = const(11)
_C_INV = const(12)
_C_MAXB = const(13)
_C_PERIOD = const(14)


def _rescale(st, up):
    """Halve (up=0) or double (up=1) both biquads' states: the filter output scales the same way."""
    i = _S_B1
    while i < _S_B1 + 10:
        if up:
            st[i] = st[i] << 1
        else:
            st[i] = st[i] >> 1
        i += 1


def ppg_block(raw, start, stop, ring, sqr, st, co):
    """Filter and detect samples raw[start:stop]. Returns the index after the last consumed sample: it stops
    right after a sample that finished a block of interest (peak index in st[_S_EV]) so the caller can read the
    ring before it moves on. `_ppg_viper.ppg_block` is the same code for the viper emitter."""
    n = st[_S_N]
    dc = st[_S_DC]
    sh = st[_S_SHIFT]
    pk = st[_S_PK]
    pcnt = st[_S_PCNT]
    s1 = st[_S_S1]
    s2 = st[_S_S2]
    act = st[_S_ACT]
    blen = st[_S_BLEN]
    pkv = st[_S_PKV]
    pkn = st[_S_PKN]
    b0 = co[_C_B0]
    b1 = co[_C_B1]
    b2 = co[_C_B2]
    a1 = co[_C_A1]
    a2 = co[_C_A2]
    a21 = co[_C_A21]
    a22 = co[_C_A22]
    w1 = co[_C_W1]
    w2 = co[_C_W2]
    dly = co[_C_D]
    m = co[_C_MASK]
    kdc = co[_C_KDC]
    inv = co[_C_INV]
    maxb = co[_C_MAXB]
    half = w1 >> 1
    i = start
    while i < stop:
        x = raw[i] << 4
        if not st[_S_INIT]:
            st[_S_INIT] = 1
            dc = x
            pcnt = co[_C_PERIOD]
        dc += (x - dc) >> kdc
        if inv:
            d = dc - x
        else:
            d = x - dc
        u = d >> sh
        while (u >= _U_LIMIT or u < -_U_LIMIT) and sh < _SHIFT_MAX:
            sh += 1
            _rescale(st, 0)
            u = d >> sh
        if u >= _U_LIMIT:
            u = _U_LIMIT - 1
        elif u < -_U_LIMIT:
            u = -_U_LIMIT
        au = u if u >= 0 else -u
        if au > pk:
            pk = au
        pcnt -= 1
        if pcnt <= 0:
            if pk < _U_LOW and sh > 0:
                sh -= 1
                _rescale(st, 1)
                u = d >> sh  # this sample at the new scale too (pk < 2**9, so |u| < 2**10)
            pk = 0
            pcnt = co[_C_PERIOD]
        # section 1 (low-pass half), DF1 + error feedback
        acc = b0 * u + b1 * st[5] + b2 * st[6] - a1 * st[7] - a2 * st[8] + st[9]
        y = acc >> 14
        st[9] = acc - (y << 14)
        st[6] = st[5]
        st[5] = u
        st[8] = st[7]
        st[7] = y
        # section 2 (high-pass half, b = 1, -2, 1)
        acc = ((y - (st[10] << 1) + st[11]) << 14) - a21 * st[12] - a22 * st[13] + st[14]
        v = acc >> 14
        st[14] = acc - (v << 14)
        st[11] = st[10]
        st[10] = y
        st[13] = st[12]
        st[12] = v
        # Elgendi: clipped square and two running sums centred on c = n - D
        j = n & m
        ring[j] = v
        old = sqr[(n - w2) & m]
        if v > 0:
            q = (v * v) >> 8
        else:
            q = 0
        sqr[j] = q
        s2 += q - old
        e = n - dly + half
        s1 += sqr[e & m] - sqr[(e - w1) & m]
        c = n - dly
        t = s2 * w1
        i += 1
        n = (n + 1) & _M20
        if s1 * w2 > t + (t >> 6):
            if not act:
                act = 1
                blen = 0
                pkv = _SENTINEL
            blen += 1
            vc = ring[c & m]
            if vc > pkv:
                pkv = vc
                pkn = c & _M20
        elif act:
            act = 0
            if blen >= w1 and blen <= maxb:
                st[_S_EV] = pkn
                break
    st[_S_N] = n
    st[_S_DC] = dc
    st[_S_SHIFT] = sh
    st[_S_PK] = pk
    st[_S_PCNT] = pcnt
    st[_S_S1] = s1
    st[_S_S2] = s2
    st[_S_ACT] = act
    st[_S_BLEN] = blen
    st[_S_PKV] = pkv
    st[_S_PKN] = pkn
    return i
