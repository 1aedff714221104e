"""The cove palette: colour from arousal, self-reported hue and synchrony.

Valence is never inferred from physiology: hue comes from what wearers report on their badges (blended as a
chroma-weighted circular mean). Group arousal drives brightness and saturation (Valdez and Mehrabian 1994), and
synchrony drives hue *convergence*: the more a group is in step, the more every member's colour is pulled toward the
group hue. Where nobody reports a colour the hue moves on the CVD-safe blue (calm) to orange (aroused) axis
(Okabe-Ito #0072B2 to #E69F00). Low signal quality desaturates.
"""

from __future__ import annotations

import colorsys

import numpy as np

from lifepalette.scoring.rounding import rounded

CALM_HUE_DEG = 202.0  # Okabe-Ito blue #0072B2
AROUSED_HUE_DEG = 41.0  # Okabe-Ito orange #E69F00
SYNC_FOR_FULL_CONVERGENCE = 0.2  # excess synchrony (r above surrogate) that pulls hues fully together


def circular_mean_deg(hues_deg: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(mean hue in degrees, resultant length 0..1) of weighted hues."""
    if hues_deg.size == 0 or float(np.sum(weights)) <= 0:
        return float("nan"), 0.0
    rad = np.deg2rad(hues_deg)
    c = float(np.sum(weights * np.cos(rad)))
    s = float(np.sum(weights * np.sin(rad)))
    total = float(np.sum(weights))
    return float(np.rad2deg(np.arctan2(s, c)) % 360.0), float(np.hypot(c, s) / total)


def convergence(excess_synchrony: float) -> float:
    if not np.isfinite(excess_synchrony):
        return 0.0
    return float(np.clip(excess_synchrony / SYNC_FOR_FULL_CONVERGENCE, 0.0, 1.0))


def arousal_hue(arousal: float) -> float:
    a = float(np.clip(arousal, 0.0, 1.0)) if np.isfinite(arousal) else 0.0
    return CALM_HUE_DEG + (AROUSED_HUE_DEG - CALM_HUE_DEG) * a


def group_colour(arousal: float, excess_synchrony: float, hues_deg: np.ndarray, chromas: np.ndarray,
                 quality: float) -> dict:
    """One group's colour. arousal 0..1 (NaN if unknown), hues in degrees with chroma 0..1 weights, quality 0..1."""
    conv = convergence(excess_synchrony)
    mean_hue, agreement = circular_mean_deg(hues_deg, chromas)
    reported = np.isfinite(mean_hue)
    hue = mean_hue if reported else arousal_hue(arousal)
    a = float(arousal) if np.isfinite(arousal) else 0.0
    brightness = 0.25 + 0.75 * a
    # Agreement in reported hues, or synchrony, makes the shared colour purer; poor signal quality washes it out.
    purity = max(agreement, conv) if reported else 0.5 + 0.5 * a
    saturation = float(np.clip((0.3 + 0.7 * purity) * (0.4 + 0.6 * quality), 0.0, 1.0))
    r, g, b = colorsys.hsv_to_rgb(hue / 360.0, saturation, brightness)
    return {"rgb": [round(r * 255), round(g * 255), round(b * 255)], "hue": round(hue, 1),
            "saturation": round(saturation, 3), "brightness": round(brightness, 3), "convergence": round(conv, 3)}


def converged_hue(own_hue_deg: float, group_hue_deg: float, conv: float) -> float:
    """A member's hue pulled toward the group hue by `conv` (0 = own, 1 = group), the short way round."""
    delta = ((group_hue_deg - own_hue_deg + 180.0) % 360.0) - 180.0
    return (own_hue_deg + conv * delta) % 360.0


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """colorsys.hsv_to_rgb over arrays, operation for operation (identical floats): (G,) x 3 -> (G, 3)."""
    i = np.floor(h * 6.0)
    f = (h * 6.0) - i
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    sector = i.astype(np.int64) % 6
    r = np.choose(sector, [v, q, p, p, t, v])
    g = np.choose(sector, [t, v, v, q, p, p])
    b = np.choose(sector, [p, p, t, v, v, q])
    grey = s == 0.0
    return np.stack([np.where(grey, v, r), np.where(grey, v, g), np.where(grey, v, b)], axis=1)


def group_colours(arousal: np.ndarray, excess: np.ndarray, mean_hue: np.ndarray, agreement: np.ndarray,
                  quality: np.ndarray) -> list[dict]:
    """`group_colour` for many groups at once, from each group's reported mean hue (NaN = none) and agreement."""
    conv = np.where(np.isfinite(excess), np.clip(excess / SYNC_FOR_FULL_CONVERGENCE, 0.0, 1.0), 0.0)
    a = np.where(np.isfinite(arousal), arousal, 0.0)
    reported = np.isfinite(mean_hue)
    hue = np.where(reported, mean_hue, CALM_HUE_DEG + (AROUSED_HUE_DEG - CALM_HUE_DEG) * np.clip(a, 0.0, 1.0))
    brightness = 0.25 + 0.75 * a
    purity = np.where(reported, np.maximum(agreement, conv), 0.5 + 0.5 * a)
    saturation = np.clip((0.3 + 0.7 * purity) * (0.4 + 0.6 * quality), 0.0, 1.0)
    rgb = np.rint(_hsv_to_rgb(hue / 360.0, saturation, brightness) * 255).astype(int).tolist()
    return [{"rgb": c, "hue": h, "saturation": s, "brightness": b, "convergence": k}
            for c, h, s, b, k in zip(rgb, rounded(hue, 1), rounded(saturation, 3), rounded(brightness, 3),
                                     rounded(conv, 3), strict=True)]
