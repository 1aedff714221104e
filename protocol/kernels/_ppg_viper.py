"""Viper version of protocol.kernels.ppg.ppg_block (MicroPython only; CPython uses the pure function).

Same statements, same integer results: every value stays inside |v| < 2**30, so the machine-word arithmetic of
viper (which wraps instead of growing) never differs from Python's. Loads through ptr32 are zero-extended on the
64-bit unix port, so signed values are sign-extended with ``(v << sx) >> sx`` where sx = 32 there and 0 on a
32-bit MCU (co[C_SX], set by PpgKernel). Only this sample loop is compiled with viper: it runs 64 times a second,
while the beat logic runs once per beat.
"""

import sys

import micropython
from micropython import const

SX = 32 if sys.maxsize > (1 << 32) else 0

_S_N = const(0)
_S_DC = const(1)
_S_SHIFT = const(2)
_S_PK = const(3)
_S_PCNT = const(4)
_S_S1 = const(15)
_S_S2 = const(16)
_S_ACT = const(17)
_S_BLEN = const(18)
_S_PKV = const(19)
_S_PKN = const(20)
_S_INIT = const(21)
_S_EV = const(22)
_C_SX = const(15)
_LIM = const(4096)
_LOW = const(512)
_SHMAX = const(12)
_M20 = const(1048575)
_SENT = const(-536870912)


@micropython.viper
def ppg_block(raw: ptr32, start: int, stop: int, ring: ptr32, sqr: ptr32, st: ptr32, co: ptr32) -> int:  # noqa: F821
    sx = int(co[_C_SX])
    n = int(st[_S_N])
    dc = int(st[_S_DC])
    sh = int(st[_S_SHIFT])
    pk = int(st[_S_PK])
    pcnt = (int(st[_S_PCNT]) << sx) >> sx
    s1 = int(st[_S_S1])
    s2 = int(st[_S_S2])
    act = int(st[_S_ACT])
    blen = int(st[_S_BLEN])
    pkv = (int(st[_S_PKV]) << sx) >> sx
    pkn = int(st[_S_PKN])
    x1 = (int(st[5]) << sx) >> sx
    x2 = (int(st[6]) << sx) >> sx
    y1 = (int(st[7]) << sx) >> sx
    y2 = (int(st[8]) << sx) >> sx
    e1 = int(st[9])
    u1 = (int(st[10]) << sx) >> sx
    u2 = (int(st[11]) << sx) >> sx
    v1 = (int(st[12]) << sx) >> sx
    v2 = (int(st[13]) << sx) >> sx
    e2 = int(st[14])
    b0 = (int(co[0]) << sx) >> sx
    b1 = (int(co[1]) << sx) >> sx
    b2 = (int(co[2]) << sx) >> sx
    a1 = (int(co[3]) << sx) >> sx
    a2 = (int(co[4]) << sx) >> sx
    a21 = (int(co[5]) << sx) >> sx
    a22 = (int(co[6]) << sx) >> sx
    w1 = int(co[7])
    w2 = int(co[8])
    dly = int(co[9])
    m = int(co[10])
    kdc = int(co[11])
    inv = int(co[12])
    maxb = int(co[13])
    period = int(co[14])
    half = w1 >> 1
    init = int(st[_S_INIT])
    i = start
    while i < stop:
        x = int(raw[i]) << 4
        if init == 0:
            init = 1
            dc = x
            pcnt = period
        dc += (x - dc) >> kdc
        if inv:
            d = dc - x
        else:
            d = x - dc
        u = d >> sh
        while (u >= _LIM or u < 0 - _LIM) and sh < _SHMAX:
            sh += 1
            x1 = x1 >> 1
            x2 = x2 >> 1
            y1 = y1 >> 1
            y2 = y2 >> 1
            e1 = e1 >> 1
            u1 = u1 >> 1
            u2 = u2 >> 1
            v1 = v1 >> 1
            v2 = v2 >> 1
            e2 = e2 >> 1
            u = d >> sh
        if u >= _LIM:
            u = _LIM - 1
        elif u < 0 - _LIM:
            u = 0 - _LIM
        au = u
        if u < 0:
            au = 0 - u
        if au > pk:
            pk = au
        pcnt -= 1
        if pcnt <= 0:
            if pk < _LOW and sh > 0:
                sh -= 1
                x1 = x1 << 1
                x2 = x2 << 1
                y1 = y1 << 1
                y2 = y2 << 1
                e1 = e1 << 1
                u1 = u1 << 1
                u2 = u2 << 1
                v1 = v1 << 1
                v2 = v2 << 1
                e2 = e2 << 1
                u = d >> sh
            pk = 0
            pcnt = period
        acc = b0 * u + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2 + e1
        y = acc >> 14
        e1 = acc - (y << 14)
        x2 = x1
        x1 = u
        y2 = y1
        y1 = y
        acc = ((y - (u1 << 1) + u2) << 14) - a21 * v1 - a22 * v2 + e2
        v = acc >> 14
        e2 = acc - (v << 14)
        u2 = u1
        u1 = y
        v2 = v1
        v1 = v
        j = n & m
        ring[j] = v
        old = int(sqr[(n - w2) & m])
        q = 0
        if v > 0:
            q = (v * v) >> 8
        sqr[j] = q
        s2 += q - old
        e = n - dly + half
        s1 += int(sqr[e & m]) - int(sqr[(e - w1) & m])
        c = n - dly
        t = s2 * w1
        i += 1
        n = (n + 1) & _M20
        if s1 * w2 > t + (t >> 6):
            if act == 0:
                act = 1
                blen = 0
                pkv = _SENT
            blen += 1
            vc = (int(ring[c & m]) << sx) >> sx
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
    st[_S_INIT] = init
    st[5] = x1
    st[6] = x2
    st[7] = y1
    st[8] = y2
    st[9] = e1
    st[10] = u1
    st[11] = u2
    st[12] = v1
    st[13] = v2
    st[14] = e2
    return i
