#!/usr/bin/env python3
"""Independent reference implementation of the narrowband ITU-T G.107 E-model.

Written apart from callpulse's Rust code (src/quality/emodel.rs), straight from the
equations of ITU-T G.107 (06/2015) clause 7 and Annex B:

  (7-1)  R = Ro - Is - Id - Ie,eff + A
  (7-2)..(7-7)   Ro and the noise sum No (Nc, Nos, Nor, Pre, Nfo)
  (7-8)..(7-17)  Is = Iolr + Ist + Iq
  (7-18)..(7-28) Id = Idte + Idle + Idd (talker echo, listener echo, absolute delay;
                 default delay-sensitivity class sT = 1, mT = 100 ms)
  (7-29) Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl/BurstR + Bpl)
  (B-4)  MOS = 1 + 0.035 R + R (R - 60)(100 - R) 7e-6, 1 below R = 0, 4.5 above R = 100

as restated in the project's reference notes (reference/emodel.md sections 1.1-1.7),
with the default parameters of G.107 Table 3. Codec rows (Ie, Bpl) are ITU-T G.113
Appendix I values: G.711 without PLC (0, 4.3), G.711 with the PLC of G.711 Appendix I
(0, 25.1), G.729A + VAD (11, 19.0).

Delay convention for a VoIP path with echo control: T = Ta = d and Tr = 2 d, where d is
the one-way mouth-to-ear delay (the convention flent documents as checked against the
ITU online E-model calculator).

Usage: python3 tests/data/emodel_reference.py [out.csv]
Writes tests/data/emodel_reference.csv next to this script by default. Plain python3,
no third-party modules. The Rust test tests/it/quality.rs reads the CSV and compares.
"""

import csv
import math
import os
import sys

# G.107 Table 3 default values.
DEFAULTS = dict(
    SLR=8.0, RLR=2.0, STMR=15.0, LSTR=18.0, Ds=3.0, Dr=3.0, TELR=65.0, WEPL=110.0,
    T=0.0, Tr=0.0, Ta=0.0, qdu=1.0, Ie=0.0, Bpl=4.3, Ppl=0.0, BurstR=1.0,
    Nc=-70.0, Nfor=-64.0, Ps=35.0, Pr=35.0, A=0.0, sT=1.0, mT=100.0,
)


def lg(x):
    return math.log10(x)


def emodel(**overrides):
    """Return a dict of every term and R for the given parameters."""
    p = dict(DEFAULTS)
    p.update(overrides)
    SLR, RLR, STMR, LSTR = p["SLR"], p["RLR"], p["STMR"], p["LSTR"]
    Ds, TELR, WEPL = p["Ds"], p["TELR"], p["WEPL"]
    T, Tr, Ta = p["T"], p["Tr"], p["Ta"]

    # --- 7.2 basic signal-to-noise ratio Ro
    OLR = SLR + RLR
    Nfo = p["Nfor"] + RLR                                               # (7-7)
    Pre = p["Pr"] + 10.0 * lg(1.0 + 10.0 ** ((10.0 - LSTR) / 10.0))    # (7-6)
    Nor = RLR - 121.0 + Pre + 0.008 * (Pre - 35.0) ** 2                 # (7-5)
    Nos = p["Ps"] - SLR - Ds - 100.0 + 0.004 * (p["Ps"] - OLR - Ds - 14.0) ** 2  # (7-4)
    No = 10.0 * lg(10.0 ** (p["Nc"] / 10.0) + 10.0 ** (Nos / 10.0)
                   + 10.0 ** (Nor / 10.0) + 10.0 ** (Nfo / 10.0))       # (7-3)
    Ro = 15.0 - 1.5 * (SLR + No)                                        # (7-2)

    # --- 7.3 simultaneous impairment factor Is
    Xolr = OLR + 0.2 * (64.0 + No - RLR)
    Iolr = 20.0 * ((1.0 + (Xolr / 8.0) ** 8) ** (1.0 / 8.0) - Xolr / 8.0)
    STMRo = -10.0 * lg(10.0 ** (-STMR / 10.0) + math.exp(-T / 4.0) * 10.0 ** (-TELR / 10.0))
    Ist = (12.0 * (1.0 + ((STMRo - 13.0) / 6.0) ** 8) ** (1.0 / 8.0)
           - 28.0 * (1.0 + ((STMRo + 1.0) / 19.4) ** 35) ** (1.0 / 35.0)
           - 13.0 * (1.0 + ((STMRo - 3.0) / 33.0) ** 13) ** (1.0 / 13.0)
           + 29.0)
    Q = 37.0 - 15.0 * lg(p["qdu"])
    G = 1.07 + 0.258 * Q + 0.0602 * Q ** 2
    Z = 46.0 / 30.0 - G / 40.0
    Y = (Ro - 100.0) / 15.0 + 46.0 / 8.4 - G / 9.0
    Iq = 15.0 * lg(1.0 + 10.0 ** Y + 10.0 ** Z)
    Is = Iolr + Ist + Iq

    # --- 7.4 delay impairment factor Id
    # talker echo
    TERV = TELR - 40.0 * lg((1.0 + T / 10.0) / (1.0 + T / 150.0)) + 6.0 * math.exp(-0.3 * T ** 2)
    if STMR < 9.0:
        TERV = TERV + Ist / 2.0
    Roe = -1.5 * (No - RLR)
    Re = 80.0 + 2.5 * (TERV - 14.0)
    if T < 1.0:
        Idte = 0.0
    else:
        Idte = ((Roe - Re) / 2.0 + math.sqrt((Roe - Re) ** 2 / 4.0 + 100.0) - 1.0) * (1.0 - math.exp(-T))
    if STMR > 20.0:
        Idte = math.sqrt(Idte ** 2 + Ist ** 2)
    # listener echo
    Rle = 10.5 * (WEPL + 7.0) * (Tr + 1.0) ** (-0.25)
    Idle = (Ro - Rle) / 2.0 + math.sqrt((Ro - Rle) ** 2 / 4.0 + 169.0)
    # absolute delay
    mT, sT = p["mT"], p["sT"]
    if Ta <= mT:
        Idd = 0.0
    else:
        X = lg(Ta / mT) / lg(2.0)
        e = 6.0 * sT
        Idd = 25.0 * ((1.0 + X ** e) ** (1.0 / e) - 3.0 * (1.0 + (X / 3.0) ** e) ** (1.0 / e) + 2.0)
    Id = Idte + Idle + Idd

    # --- 7.5 effective equipment impairment factor
    Ppl, Ie, Bpl, BurstR = p["Ppl"], p["Ie"], p["Bpl"], p["BurstR"]
    Ieeff = Ie + (95.0 - Ie) * Ppl / (Ppl / BurstR + Bpl)               # (7-29)

    R = Ro - Is - Id - Ieeff + p["A"]                                   # (7-1)
    return dict(No=No, Ro=Ro, Iolr=Iolr, Ist=Ist, Iq=Iq, Is=Is, Idte=Idte, Idle=Idle,
                Idd=Idd, Id=Id, Ieeff=Ieeff, R=R)


def mos(R):
    """G.107 Annex B (B-4), clamped to [1, 4.5]."""
    if R < 0.0:
        return 1.0
    if R > 100.0:
        return 4.5
    m = 1.0 + 0.035 * R + R * (R - 60.0) * (100.0 - R) * 7.0e-6
    return min(4.5, max(1.0, m))


def self_check():
    """Published values (G.107 clause 7.7 and Annex B) the script must reproduce."""
    t = emodel()
    assert abs(t["R"] - 93.2062077) < 1e-6, t["R"]
    assert abs(t["No"] - (-61.1792)) < 1e-4 and abs(t["Ro"] - 94.7688) < 1e-4, t
    assert abs(t["Is"] - 1.4136) < 1e-4, t
    assert abs(mos(t["R"]) - 4.41) < 0.005
    for r, m in ((90, 4.34), (80, 4.024), (70, 3.60), (60, 3.10), (50, 2.58)):
        assert abs(mos(r) - m) < 0.005, (r, mos(r))
    # Id and R against one-way delay (reference notes, table in section 1.3).
    for d, r in ((100, 90.664), (200, 85.805), (300, 72.666), (400, 62.247), (800, 42.822)):
        got = emodel(T=d, Ta=d, Tr=2 * d)["R"]
        assert abs(got - r) < 0.0015, (d, got, r)


CODECS = (
    # name, Ie, Bpl (G.113 Appendix I)
    ("G711", 0.0, 25.1),
    ("G711-noPLC", 0.0, 4.3),
    ("G729A", 11.0, 19.0),
)


def rows():
    # Full sweep: one-way delay 0..800 ms by 25 ms, loss 0..30 % by 1 %, random loss.
    for name, ie, bpl in CODECS:
        for d in range(0, 801, 25):
            for loss in range(0, 31):
                yield name, ie, bpl, 1.0, float(d), float(loss)
    # Bursty loss: a coarser sweep with BurstR 2 and 4.
    for name, ie, bpl in CODECS:
        for burst in (2.0, 4.0):
            for d in range(0, 801, 100):
                for loss in range(0, 31, 5):
                    yield name, ie, bpl, burst, float(d), float(loss)


def main():
    self_check()
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "emodel_reference.csv")
    n = 0
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["codec", "ie", "bpl", "burst_r", "delay_ms", "loss_pct", "r", "mos"])
        for name, ie, bpl, burst, d, loss in rows():
            t = emodel(T=d, Ta=d, Tr=2.0 * d, Ie=ie, Bpl=bpl, Ppl=loss, BurstR=burst)
            w.writerow([name, ie, bpl, burst, d, loss, "%.6f" % t["R"], "%.6f" % mos(t["R"])])
            n += 1
    print("wrote %d rows to %s" % (n, out))


if __name__ == "__main__":
    main()
