"""Procedural anatomy: label maps whose shapes depend on the body part.

A phantom is an ``int8`` map of tissue labels (air, lung, fat, soft tissue, bone, contrast, …) drawn
with a few primitives in a model frame that a random pose rotates, scales and shifts. The modality's
intensity model (``intensity.py``) turns labels into stored pixel values. Shapes are crude on purpose:
they carry real, imperfect visual signal (a skull ring, lungs in a thorax, fingers on a palm) at a cost
of a few milliseconds per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

AIR, LUNG, FAT, SOFT, MUSCLE, FLUID, ORGAN, BONE, CORTEX, VESSEL, GAS, BARIUM, GREY, WHITE = range(14)
N_LABELS = 14

# Views a body part can be drawn in: a cross-section (CT/MR slices) or a projection (radiographs,
# fluoroscopy, angiography, localizers).
AXIAL = "axial"
PROJECTION = "projection"


@dataclass(frozen=True)
class Pose:
    """Where the anatomy sits in the image: rotation (degrees), scale and centre offset (fractions)."""

    angle: float = 0.0
    scale: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0

    @staticmethod
    def random(rng: np.random.Generator, max_angle: float = 15.0) -> Pose:
        """Draw a plausible patient placement."""
        return Pose(
            angle=float(rng.uniform(-max_angle, max_angle)),
            scale=float(rng.uniform(0.8, 1.1)),
            shift_x=float(rng.uniform(-0.08, 0.08)),
            shift_y=float(rng.uniform(-0.08, 0.08)),
        )


class Canvas:
    """A label map with drawing primitives in model coordinates (x right, y down, unit = half size)."""

    def __init__(self, rows: int, cols: int, pose: Pose, background: int = AIR) -> None:
        self.labels = np.full((rows, cols), background, dtype=np.int8)
        self.rows, self.cols = rows, cols
        self._s = pose.scale * min(rows, cols) / 2.0
        self._cx = cols / 2.0 + pose.shift_x * cols
        self._cy = rows / 2.0 + pose.shift_y * rows
        self._theta = math.radians(pose.angle)
        self._cos, self._sin = math.cos(self._theta), math.sin(self._theta)

    def _to_pixel(self, x: float, y: float) -> tuple[float, float]:
        return (
            self._cx + self._s * (self._cos * x - self._sin * y),
            self._cy + self._s * (self._sin * x + self._cos * y),
        )

    def _box(self, px: float, py: float, radius: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        r0, r1 = max(int(py - radius) - 1, 0), min(int(py + radius) + 2, self.rows)
        c0, c1 = max(int(px - radius) - 1, 0), min(int(px + radius) + 2, self.cols)
        if r0 >= r1 or c0 >= c1:
            return None
        yy = np.arange(r0, r1, dtype=np.float32)[:, None] - py
        xx = np.arange(c0, c1, dtype=np.float32)[None, :] - px
        return slice(r0, r1), slice(c0, c1), xx, yy

    def ellipse(self, x: float, y: float, rx: float, ry: float, label: int, angle: float = 0.0) -> None:
        """Fill an ellipse centred at (x, y) with radii (rx, ry), rotated by ``angle`` degrees."""
        px, py = self._to_pixel(x, y)
        arx, ary = max(rx * self._s, 0.5), max(ry * self._s, 0.5)
        box = self._box(px, py, max(arx, ary))
        if box is None:
            return
        rs, cs, xx, yy = box
        t = self._theta + math.radians(angle)
        c, s = math.cos(t), math.sin(t)
        u = (c * xx + s * yy) / arx
        v = (-s * xx + c * yy) / ary
        self.labels[rs, cs][u * u + v * v <= 1.0] = label

    def ring(self, x: float, y: float, rx: float, ry: float, width: float, label: int, inner: int,
             angle: float = 0.0) -> None:
        """An elliptical shell of ``label`` around an interior of ``inner``."""
        self.ellipse(x, y, rx, ry, label, angle)
        self.ellipse(x, y, max(rx - width, 0.001), max(ry - width, 0.001), inner, angle)

    def capsule(self, x0: float, y0: float, x1: float, y1: float, r: float, label: int) -> None:
        """A segment from (x0, y0) to (x1, y1) thickened to radius ``r`` (bones, fingers, vessels)."""
        ax, ay = self._to_pixel(x0, y0)
        bx, by = self._to_pixel(x1, y1)
        rad = max(r * self._s, 0.6)
        mx, my = (ax + bx) / 2, (ay + by) / 2
        box = self._box(mx, my, math.hypot(bx - ax, by - ay) / 2 + rad)
        if box is None:
            return
        rs, cs, xx, yy = box
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy or 1e-6
        # xx, yy are relative to the midpoint; shift to be relative to a
        qx, qy = xx + (mx - ax), yy + (my - ay)
        t = np.clip((qx * dx + qy * dy) / length2, 0.0, 1.0)
        ex, ey = qx - t * dx, qy - t * dy
        self.labels[rs, cs][ex * ex + ey * ey <= rad * rad] = label

    def bone(self, x0: float, y0: float, x1: float, y1: float, r: float) -> None:
        """A long bone: cortex shell with a cancellous core."""
        self.capsule(x0, y0, x1, y1, r, CORTEX)
        self.capsule(x0, y0, x1, y1, r * 0.55, BONE)


def vessel_tree(cv: Canvas, rng: np.random.Generator, x: float, y: float, direction: float, length: float,
                radius: float, depth: int, label: int = VESSEL) -> None:
    """Draw a branching vessel tree from (x, y) heading ``direction`` (degrees, 90 = down)."""
    if depth <= 0 or radius < 0.003:
        return
    steps = 3
    for _ in range(steps):
        direction += float(rng.normal(0, 12))
        a = math.radians(direction)
        nx, ny = x + math.cos(a) * length / steps, y + math.sin(a) * length / steps
        cv.capsule(x, y, nx, ny, radius, label)
        x, y = nx, ny
    for sign in (-1, 1):
        if rng.random() < 0.85:
            vessel_tree(cv, rng, x, y, direction + sign * float(rng.uniform(18, 45)),
                        length * float(rng.uniform(0.55, 0.8)), radius * float(rng.uniform(0.6, 0.8)),
                        depth - 1, label)


def _vertebra_axial(cv: Canvas, x: float, y: float, size: float) -> None:
    cv.ring(x, y, 0.16 * size, 0.13 * size, 0.025 * size, CORTEX, BONE)
    cv.ring(x, y + 0.2 * size, 0.11 * size, 0.09 * size, 0.035 * size, CORTEX, FLUID)
    cv.capsule(x, y + 0.29 * size, x, y + 0.42 * size, 0.03 * size, CORTEX)


def _spine_column(cv: Canvas, rng: np.random.Generator, part: str, x: float = 0.0) -> None:
    n, height, width = {"CSPINE": (7, 0.085, 0.16), "TSPINE": (10, 0.075, 0.18), "LSPINE": (5, 0.14, 0.27)}[
        part
    ]
    top = -0.5 * n * height * 2.1 / 2 * 1.9
    curve = float(rng.uniform(0.05, 0.15)) * (1 if part != "TSPINE" else -1)
    for i in range(n):
        yc = top + i * height * 2.1
        xc = x + curve * math.sin(math.pi * i / max(n - 1, 1))
        cv.ring(xc, yc, width * (1 + 0.04 * i), height, 0.02, CORTEX, BONE)
        cv.ellipse(xc, yc + height * 1.05, width * 0.9, height * 0.12, FLUID)
        cv.capsule(xc + width * 1.1, yc, xc + width * 1.7, yc + height * 0.3, height * 0.3, BONE)
    if part == "LSPINE":
        cv.ellipse(x + curve * 0.2, top + n * height * 2.1 + 0.15, 0.3, 0.2, BONE)
    if part == "CSPINE":
        cv.ring(x + 0.1, top - 0.45, 0.55, 0.4, 0.04, CORTEX, SOFT)


def _long_limb(cv: Canvas, rng: np.random.Generator, two_bones: bool, vertical: float = 1.0) -> None:
    cv.capsule(0, -1.2, 0, 1.2, 0.42, SOFT)
    cv.capsule(0, -1.2, 0, 1.2, 0.32, MUSCLE)
    if two_bones:
        cv.bone(-0.12, -1.1, -0.1, 1.1, 0.07)
        cv.bone(0.14, -1.1, 0.12, 1.1, 0.05)
    else:
        cv.bone(0.0, -1.1, 0.02, 1.1, 0.11)


def _hand(cv: Canvas, rng: np.random.Generator, fingers: int = 5, zoom_finger: bool = False) -> None:
    spread = float(rng.uniform(0.8, 1.2))
    if not zoom_finger:
        cv.ellipse(0.0, 0.25, 0.45, 0.42, SOFT)
        cv.capsule(0.0, 0.6, 0.0, 1.3, 0.36, SOFT)
        cv.bone(-0.12, 0.65, -0.12, 1.3, 0.07)
        cv.bone(0.15, 0.65, 0.15, 1.3, 0.05)
        for i in range(8):
            cv.ring(-0.2 + 0.13 * (i % 4), 0.45 + 0.1 * (i // 4), 0.06, 0.05, 0.015, CORTEX, BONE)
    for i in range(fingers):
        base_x = -0.3 + i * 0.15
        ang = math.radians(-90 + (i - 2) * 8 * spread)
        if i == 0 and fingers == 5:
            base_x, ang = -0.42, math.radians(-140 + 10 * spread)
        dx, dy = math.cos(ang), math.sin(ang)
        x, y = base_x, 0.35
        lengths = (0.32, 0.22, 0.14, 0.1) if i else (0.26, 0.18, 0.13)
        cv.capsule(x, y, x + dx * sum(lengths), y + dy * sum(lengths), 0.07, SOFT)
        for seg in lengths:
            nx, ny = x + dx * seg, y + dy * seg
            cv.bone(x + dx * 0.015, y + dy * 0.015, nx - dx * 0.015, ny - dy * 0.015, 0.035)
            x, y = nx, ny


def _joint(cv: Canvas, rng: np.random.Generator, part: str) -> None:
    bend = float(rng.uniform(-25, 25)) if part in ("ELBOW", "KNEE") else 0.0
    a = math.radians(90 + bend)
    cv.capsule(0, -1.2, 0, 0, 0.5, SOFT)
    cv.capsule(0, 0, math.cos(a) * 1.2, math.sin(a) * 1.2, 0.45, SOFT)
    upper_r = 0.16 if part == "KNEE" else 0.11
    cv.bone(0, -1.2, 0, -0.15, upper_r)
    cv.ring(0, -0.12, upper_r * 2.0, upper_r * 0.9, 0.025, CORTEX, BONE)
    tx, ty = math.cos(a), math.sin(a)
    cv.ring(tx * 0.1, ty * 0.1, upper_r * 1.8, upper_r * 0.6, 0.025, CORTEX, BONE)
    cv.bone(tx * 0.1, ty * 0.1, tx * 1.2, ty * 1.2, upper_r * 0.85)
    if part == "KNEE":
        cv.bone(tx * 0.2 + 0.22, ty * 0.2, tx * 1.2 + 0.22, ty * 1.2, 0.045)
        cv.ring(-0.33, -0.1, 0.08, 0.14, 0.02, CORTEX, BONE)
    if part == "ELBOW":
        cv.bone(tx * 0.1 + 0.15, ty * 0.1, tx * 1.2 + 0.15, ty * 1.2, 0.06)


def _foot(cv: Canvas, rng: np.random.Generator, part: str) -> None:
    cv.capsule(-0.7, 0.1, 0.8, 0.2, 0.28, SOFT)
    cv.capsule(-0.75, -1.2, -0.6, 0.0, 0.3, SOFT)
    cv.bone(-0.75, -1.2, -0.62, -0.25, 0.1)
    cv.bone(-0.5, -1.2, -0.45, -0.3, 0.05)
    cv.ring(-0.6, -0.12, 0.17, 0.12, 0.02, CORTEX, BONE)  # talus
    cv.ring(-0.72, 0.15, 0.24, 0.14, 0.025, CORTEX, BONE, angle=10)  # calcaneus
    for i in range(5):
        y = 0.05 + i * 0.06
        cv.bone(-0.25, y, 0.35, y + 0.03, 0.025)
        cv.bone(0.4, y + 0.03, 0.72, y + 0.05, 0.02)
    if part == "HEEL":
        cv.ring(-0.72, 0.15, 0.3, 0.18, 0.03, CORTEX, BONE, angle=10)


def _thorax_axial(cv: Canvas, rng: np.random.Generator, z: float) -> None:
    cv.ellipse(0, 0, 0.95, 0.7, FAT)
    cv.ellipse(0, 0, 0.88, 0.63, MUSCLE)
    lung = 0.85 + 0.15 * math.sin(math.pi * z)
    cv.ellipse(-0.42, -0.02, 0.33 * lung, 0.48 * lung, LUNG, angle=8)
    cv.ellipse(0.42, -0.02, 0.33 * lung, 0.48 * lung, LUNG, angle=-8)
    cv.ellipse(0.12, 0.02, 0.24 * (1.2 - z * 0.5), 0.2, ORGAN, angle=20)
    cv.ellipse(-0.06, 0.3, 0.07, 0.07, VESSEL)
    _vertebra_axial(cv, 0.0, 0.42, 0.9)
    for k in range(10):
        a = math.pi * (0.15 + 0.07 * k) if k < 5 else math.pi * (0.85 - 0.07 * (k - 5))
        cv.ellipse(0.86 * math.cos(a) * (1 if k < 5 else 1), 0.6 * math.sin(a) + 0.02, 0.05, 0.03, CORTEX)


def _thorax_projection(cv: Canvas, rng: np.random.Generator) -> None:
    cv.ellipse(0, 0.1, 1.05, 1.15, SOFT)
    cv.ellipse(-0.42, -0.05, 0.33, 0.68, LUNG, angle=5)
    cv.ellipse(0.42, -0.05, 0.33, 0.68, LUNG, angle=-5)
    cv.ellipse(0.12, 0.28, 0.3, 0.27, ORGAN, angle=-15)
    cv.capsule(0, -1.0, 0, 1.0, 0.07, BONE)
    for k in range(9):
        y = -0.55 + k * 0.13
        for side in (-1, 1):
            cv.capsule(side * 0.08, y - 0.05, side * 0.75, y + 0.1, 0.015, CORTEX)
    for side in (-1, 1):
        cv.capsule(side * 0.1, -0.72, side * 0.75, -0.8, 0.03, CORTEX)
    cv.ellipse(-0.35, 0.72, 0.38, 0.12, SOFT)
    cv.ellipse(0.38, 0.75, 0.38, 0.12, SOFT)


def _abdomen_axial(cv: Canvas, rng: np.random.Generator, z: float, part: str) -> None:
    cv.ellipse(0, 0, 0.92, 0.72, FAT)
    cv.ellipse(0, 0, 0.84, 0.64, MUSCLE)
    cv.ellipse(0, 0, 0.78, 0.58, FAT)
    if z < 0.6:
        cv.ellipse(-0.4, -0.1, 0.38 * (1 - z), 0.35 * (1 - z * 0.8), ORGAN)
        cv.ellipse(0.5, 0.05, 0.15, 0.22, ORGAN)
    kidney = BARIUM if part == "URINARYTRACT" else ORGAN
    for side in (-1, 1):
        cv.ellipse(side * 0.3, 0.25, 0.1, 0.15, kidney, angle=side * 20)
        cv.ellipse(side * 0.27, 0.25, 0.03, 0.05, FLUID)
    loop_label = BARIUM if part == "GITRACT" else SOFT
    for _ in range(int(rng.integers(6, 14))):
        x, y = float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.3, 0.15))
        cv.ring(x, y, 0.08, 0.07, 0.02, loop_label, GAS if rng.random() < 0.5 else FLUID)
    cv.ellipse(0.05, 0.25, 0.05, 0.05, VESSEL)
    _vertebra_axial(cv, 0.0, 0.35, 0.9)


def _pelvis_axial(cv: Canvas, rng: np.random.Generator, part: str) -> None:
    cv.ellipse(0, 0, 0.95, 0.7, FAT)
    cv.ellipse(0, 0, 0.86, 0.6, MUSCLE)
    for side in (-1, 1):
        cv.ring(side * 0.55, 0.05, 0.15, 0.15, 0.035, CORTEX, BONE)
        cv.ellipse(side * 0.42, 0.1, 0.08, 0.2, MUSCLE)
    cv.ellipse(0, -0.15, 0.22, 0.16, FLUID if part != "URINARYTRACT" else BARIUM)
    cv.ellipse(0, 0.3, 0.08, 0.07, GAS)
    cv.ring(0, 0.5, 0.2, 0.08, 0.03, CORTEX, BONE)


def _pelvis_projection(cv: Canvas, rng: np.random.Generator, part: str) -> None:
    cv.ellipse(0, 0, 1.1, 0.9, SOFT)
    for side in (-1, 1):
        cv.ring(side * 0.45, -0.35, 0.32, 0.3, 0.04, CORTEX, BONE, angle=side * 25)
        cv.ring(side * 0.28, 0.32, 0.12, 0.1, 0.04, CORTEX, SOFT)
        cv.ring(side * 0.55, 0.12, 0.13, 0.13, 0.03, CORTEX, BONE)
        cv.bone(side * 0.55, 0.12, side * 0.72, 0.35, 0.07)
        cv.bone(side * 0.72, 0.35, side * 0.75, 1.2, 0.1)
    cv.ring(0, -0.2, 0.14, 0.28, 0.03, CORTEX, BONE)
    if part == "URINARYTRACT":
        cv.ellipse(0, 0.35, 0.18, 0.12, BARIUM)


def _abdomen_projection(cv: Canvas, rng: np.random.Generator, part: str) -> None:
    cv.ellipse(0, 0.05, 1.05, 1.1, SOFT)
    cv.capsule(0, -1.0, 0, 0.6, 0.08, BONE)
    for k in range(5):
        cv.ring(0, -0.6 + k * 0.25, 0.12, 0.09, 0.02, CORTEX, BONE)
    for side in (-1, 1):
        cv.ring(side * 0.5, 0.85, 0.35, 0.25, 0.04, CORTEX, BONE, angle=side * 25)
    if part == "GITRACT":
        if rng.random() < 0.5:  # stomach and duodenum
            cv.capsule(-0.05, -1.1, 0.05, -0.55, 0.05, BARIUM)
            cv.ellipse(0.3, -0.35, 0.22, 0.32, BARIUM, angle=-30)
            cv.capsule(0.1, -0.05, -0.25, 0.0, 0.06, BARIUM)
            cv.capsule(-0.25, 0.0, -0.2, 0.3, 0.05, BARIUM)
        else:  # colon frame
            pts = [(-0.6, 0.7), (-0.6, -0.4), (-0.2, -0.55), (0.3, -0.5), (0.62, -0.4), (0.6, 0.5), (0.1, 0.75)]
            for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
                cv.capsule(x0, y0, x1, y1, 0.11, BARIUM)
                cv.capsule(x0, y0, x1, y1, 0.05, GAS)
    elif part == "URINARYTRACT":
        for side in (-1, 1):
            cv.ellipse(side * 0.35, -0.35, 0.13, 0.22, ORGAN, angle=side * 15)
            cv.ellipse(side * 0.3, -0.32, 0.05, 0.08, BARIUM)
            cv.capsule(side * 0.3, -0.25, side * 0.15, 0.75, 0.015, BARIUM)
        cv.ellipse(0, 0.85, 0.2, 0.14, BARIUM)
    else:
        for _ in range(int(rng.integers(4, 10))):
            cv.ellipse(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.5, 0.5)), 0.08, 0.06, GAS)


def _head_axial(cv: Canvas, rng: np.random.Generator, z: float) -> None:
    f = 0.55 + 0.45 * math.sin(math.pi * (0.15 + 0.85 * z))
    cv.ellipse(0, 0, 0.78 * f, 0.95 * f, SOFT)
    cv.ring(0, 0, 0.74 * f, 0.9 * f, 0.06, CORTEX, GREY)
    cv.ellipse(0, 0, 0.52 * f, 0.68 * f, WHITE)
    if z > 0.3:
        cv.ellipse(-0.1 * f, -0.05, 0.07 * f, 0.25 * f, FLUID, angle=-10)
        cv.ellipse(0.1 * f, -0.05, 0.07 * f, 0.25 * f, FLUID, angle=10)
    else:
        cv.ellipse(-0.25, -0.7 * f, 0.13, 0.12, FAT)
        cv.ellipse(0.25, -0.7 * f, 0.13, 0.12, FAT)
        cv.ellipse(0, -0.55 * f, 0.12, 0.1, GAS)


def _head_projection(cv: Canvas, rng: np.random.Generator) -> None:
    cv.ellipse(0, -0.1, 0.85, 0.78, SOFT)
    cv.ring(0, -0.1, 0.8, 0.72, 0.05, CORTEX, SOFT)
    cv.ellipse(-0.55, 0.35, 0.15, 0.12, GAS)
    cv.ellipse(-0.35, 0.25, 0.12, 0.1, CORTEX)
    cv.capsule(-0.5, 0.65, 0.1, 0.85, 0.05, CORTEX)
    cv.capsule(0.1, 0.85, 0.3, 0.5, 0.05, CORTEX)
    cv.capsule(0.35, 0.55, 0.38, 1.3, 0.1, BONE)


def _neck_axial(cv: Canvas, rng: np.random.Generator, part: str) -> None:
    cv.ellipse(0, 0, 0.62, 0.55, FAT)
    cv.ellipse(0, 0, 0.56, 0.49, MUSCLE)
    cv.ellipse(0, -0.3, 0.09, 0.08, GAS)
    cv.ellipse(-0.16, -0.3, 0.09, 0.06, ORGAN)
    cv.ellipse(0.16, -0.3, 0.09, 0.06, ORGAN)
    vessel = VESSEL if part == "CAROTID" else SOFT
    for side in (-1, 1):
        cv.ellipse(side * 0.27, -0.1, 0.05, 0.05, vessel)
        cv.ellipse(side * 0.36, -0.05, 0.06, 0.05, vessel)
    _vertebra_axial(cv, 0.0, 0.15, 0.8)


def _shoulder(cv: Canvas, rng: np.random.Generator, part: str) -> None:
    cv.ellipse(0.1, 0.2, 1.1, 1.0, SOFT)
    cv.ellipse(-0.7, 0.5, 0.45, 0.7, LUNG)
    cv.capsule(-0.9, -0.55, 0.45, -0.65, 0.05 if part != "CLAVICLE" else 0.07, CORTEX)
    cv.ring(0.35, -0.15, 0.25, 0.25, 0.035, CORTEX, BONE)
    cv.bone(0.4, 0.0, 0.55, 1.3, 0.12)
    cv.ellipse(0.05, 0.25, 0.2, 0.45, BONE, angle=-15)
    for k in range(3):
        cv.capsule(-1.0, -0.2 + k * 0.25, -0.1, -0.05 + k * 0.25, 0.02, CORTEX)


def _breast(cv: Canvas, rng: np.random.Generator, view: str) -> None:
    if view == AXIAL:
        cv.ellipse(0, 0.3, 0.95, 0.5, MUSCLE)
        cv.ellipse(0, 0.45, 0.85, 0.35, LUNG)
        for side in (-1, 1):
            cv.ellipse(side * 0.42, -0.05, 0.38, 0.42, FAT)
            for _ in range(6):
                cv.ellipse(side * 0.42 + float(rng.normal(0, 0.1)), float(rng.normal(-0.1, 0.1)),
                           0.08, 0.05, ORGAN, angle=float(rng.uniform(0, 180)))
    else:
        cv.ellipse(-0.6, 0.0, 1.1, 0.9, FAT)
        for _ in range(10):
            cv.ellipse(float(rng.uniform(-0.9, 0.2)), float(rng.normal(0, 0.3)), 0.12, 0.06, ORGAN,
                       angle=float(rng.uniform(0, 180)))


def _test_object(cv: Canvas, rng: np.random.Generator) -> None:
    if rng.random() < 0.5:
        cv.ellipse(0, 0, 0.85, 0.85, FLUID)
        for k, lab in enumerate((BONE, AIR, FAT, CORTEX, LUNG, MUSCLE)):
            a = 2 * math.pi * k / 6
            cv.ellipse(0.5 * math.cos(a), 0.5 * math.sin(a), 0.1, 0.1, lab)
    else:
        for k in range(12):
            cv.capsule(-0.8 + 0.14 * k, -0.6, -0.8 + 0.14 * k, 0.6, 0.01 + 0.004 * k, CORTEX)


def _whole_body(cv: Canvas, rng: np.random.Generator) -> None:
    cv.ellipse(0, -0.82, 0.12, 0.14, ORGAN)
    cv.capsule(0, -0.5, 0, 0.1, 0.25, SOFT)
    for side in (-1, 1):
        cv.capsule(side * 0.3, -0.55, side * 0.42, 0.2, 0.06, SOFT)
        cv.capsule(side * 0.12, 0.15, side * 0.16, 0.98, 0.09, SOFT)
    cv.ellipse(0.0, -0.3, 0.12, 0.1, ORGAN)
    cv.ellipse(0.0, 0.12, 0.1, 0.06, FLUID)


def draw(part: str, view: str, rows: int, cols: int, rng: np.random.Generator, pose: Pose,
         z: float = 0.5) -> np.ndarray:
    """Draw the label map of one image.

    Args:
        part: true body part (one of ``vocabulary.BODY_PARTS``).
        view: ``AXIAL`` for a cross-sectional slice, ``PROJECTION`` for a radiograph-like image.
        rows: image height in pixels.
        cols: image width in pixels.
        rng: random generator for anatomical variation.
        pose: patient placement.
        z: position of the slice within the scanned range, 0..1 (cross-sections only).

    Returns:
        ``int8`` array of tissue labels, shape ``(rows, cols)``.
    """
    cv = Canvas(rows, cols, pose)
    if part in ("HAND", "WRIST"):
        _hand(cv, rng)
    elif part == "FINGER":
        _hand(cv, rng, fingers=2, zoom_finger=True)
    elif part in ("ELBOW", "KNEE"):
        _joint(cv, rng, part)
    elif part in ("ARM", "LEG"):
        _long_limb(cv, rng, two_bones=rng.random() < 0.6)
    elif part in ("ANKLE", "HEEL", "FOOT"):
        _foot(cv, rng, part)
    elif part == "EXTREMITY":
        choice = int(rng.integers(0, 3))
        (_hand if choice == 0 else (lambda c, r: _foot(c, r, "FOOT")) if choice == 1
         else (lambda c, r: _long_limb(c, r, True)))(cv, rng)
    elif part in ("CSPINE", "TSPINE", "LSPINE"):
        if view == AXIAL:
            if part == "TSPINE":
                _thorax_axial(cv, rng, z)
            elif part == "LSPINE":
                _abdomen_axial(cv, rng, 0.8, part)
            else:
                _neck_axial(cv, rng, part)
            _vertebra_axial(cv, 0.0, 0.3 if part != "CSPINE" else 0.15, 1.1)
        else:
            cv.ellipse(0.05, 0.0, 0.9, 1.3, SOFT)
            _spine_column(cv, rng, part)
    elif part in ("SHOULDER", "CLAVICLE"):
        _shoulder(cv, rng, part)
    elif part == "BREAST":
        _breast(cv, rng, view)
    elif part == "CHEST":
        (_thorax_axial(cv, rng, z) if view == AXIAL else _thorax_projection(cv, rng))
    elif part in ("ABDOMEN", "GITRACT", "URINARYTRACT"):
        (_abdomen_axial(cv, rng, z, part) if view == AXIAL else _abdomen_projection(cv, rng, part))
    elif part in ("PELVIS", "HIP"):
        (_pelvis_axial(cv, rng, part) if view == AXIAL else _pelvis_projection(cv, rng, part))
    elif part in ("HEAD", "SKULL"):
        (_head_axial(cv, rng, z) if view == AXIAL else _head_projection(cv, rng))
    elif part in ("NECK", "CAROTID"):
        if view == AXIAL:
            _neck_axial(cv, rng, part)
        else:
            cv.ellipse(0, 0, 0.7, 1.3, SOFT)
            _spine_column(cv, rng, "CSPINE", x=0.25)
    elif part == "WHOLEBODY":
        (_abdomen_axial(cv, rng, z, part) if view == AXIAL else _whole_body(cv, rng))
    else:  # TEST and anything unforeseen
        _test_object(cv, rng)
    return cv.labels


def draw_vessels(part: str, rows: int, cols: int, rng: np.random.Generator, pose: Pose) -> np.ndarray:
    """Boolean mask of a contrast-filled vessel tree for angiography of ``part``."""
    cv = Canvas(rows, cols, pose, background=0)
    if part == "CHEST":  # coronaries hang from the aortic root
        vessel_tree(cv, rng, -0.1, -0.5, 60, 0.5, 0.035, 4, label=1)
        vessel_tree(cv, rng, 0.1, -0.5, 120, 0.6, 0.04, 4, label=1)
        cv.capsule(-0.1, -0.5, -0.6, -1.2, 0.012, 1)  # catheter
    elif part in ("CAROTID", "HEAD", "NECK"):
        vessel_tree(cv, rng, 0.0, 1.0, -90, 0.7, 0.05, 5, label=1)
    elif part in ("LEG", "ARM", "EXTREMITY"):
        vessel_tree(cv, rng, 0.0, -1.1, 90, 0.9, 0.04, 3, label=1)
    else:
        cv.capsule(0.0, -1.2, 0.0, 0.6, 0.07, 1)
        vessel_tree(cv, rng, 0.0, -0.2, 0, 0.5, 0.03, 4, label=1)
        vessel_tree(cv, rng, 0.0, -0.2, 180, 0.5, 0.03, 4, label=1)
    return cv.labels.astype(bool)
