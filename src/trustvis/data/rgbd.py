"""Real RGB + depth frames from the package managers, and the reader of users' own RGB-D captures.

No package ships a phone Time-of-Flight set, so the real RGB-D material of the ``antispoof`` task (issue 21)
is the little that installs offline (``../shared/specs/data_sources.md`` §5). Every frame becomes an
:class:`RGBDFrame`: ``uint8 (H, W, 3)`` RGB and ``float32 (H, W)`` depth in metres *registered to the RGB
pixels*, ``0`` where the depth is unknown (never NaN or inf)::

    package files --read_*--> decode depth --register to rgb pixels--> RGBDFrame(rgb, depth [m], 0 = unknown)

Sources (:data:`RGBD_SOURCES`; paths of apt packages under :func:`~trustvis.data.sources.apt_root`):

``middlebury`` -- scikit-image (pip), ``skimage/data/motorcycle_left.png`` + ``motorcycle_disp.npz``
    (what ``skimage.data.stereo_motorcycle()`` returns; read from the files so that :func:`rgbd_status`
    and the reader agree). Middlebury 2014 "Motorcycle", 4x downsampled: 741x500, ground-truth disparity
    of the left view, ``inf`` = unknown. Depth ``Z = f * B / (d + doffs)`` with the calibration in
    scikit-image's docstring: ``f = 994.978 px``, ``doffs = 31.086 px``, ``B = 193.001 mm``. Already
    registered (the disparity is the left view's). 1 frame, ~93 % valid, 2.1-5.0 m (median 2.75 m).
``aloe`` -- opencv-doc (apt), ``/usr/share/doc/opencv-doc/examples/data/aloeL.jpg`` + ``aloeGT.png``
    (Middlebury 2006 "Aloe", 1282x1110, 8-bit ground-truth disparity of the left view, 0 = unknown). No
    calibration ships, so the depth is known only up to scale: ``depth = ALOE_K / d`` with
    ``ALOE_K = 59`` (the median valid disparity, so the median depth is 1 m), and ``metric=False``.
    1 frame, ~97 % valid.
``castel`` -- visp-images-data (apt), ``/usr/share/visp-images-data/ViSP-images/mbt-depth/castel/castel/``:
    ``image_%04d.pgm`` (8-bit gray 640x480, given as three equal channels) + ``depth_image_%04d.bin``,
    30 frames of a toy castle filmed by an Intel SR300. The ``.bin`` layout (ViSP's
    ``mbtGenericTrackingDepth.cpp``, ``read_data``): little-endian ``uint32`` height, ``uint32`` width,
    then ``height * width`` little-endian ``uint16`` raw depth, row-major; metres ``= raw *``
    :data:`CASTEL_DEPTH_SCALE`; 0 = unknown. The header must match the file length exactly. The depth is
    registered into the gray (colour-camera) image: each valid depth pixel is deprojected with the depth
    intrinsics (``fx=476.0536 fy=476.0535 cx=311.4846 cy=246.2832``, from ``chateau_depth.xml``), moved
    into the colour camera's frame, projected with the colour intrinsics (``fx=fy=615.1675 cx=312.1890
    cy=243.4374``, from ``chateau.xml``); the nearest point per pixel wins (z-buffer). Lens distortion is
    ignored (the files give no coefficients). ``../depth_M_color.txt`` (4x4) maps colour-frame points to
    the depth frame: ViSP's RealSense grabbers write it as ``getTransformation(color, depth)`` and its
    generic tracker takes it as the colour (reference) camera -> depth camera transform (ViSP's ``a_M_b``
    maps frame ``b`` to frame ``a``), so the depth is moved with its inverse. Checked on the data: with the
    inverse the depth silhouettes fall on the objects' outlines to within ~4 px (the outline of valid depth
    sits a few pixels inside objects, where the SR300 loses depth at edges); with the matrix itself they
    land ~100 px to the left. The colour camera samples the scene ~1.3x more finely than the depth
    camera, so forward projection leaves 1-pixel gaps; a gap whose two opposite neighbours (left and
    right, then above and below) are valid and within 3 % of each other is filled with their mean; other
    unprojected pixels stay 0 (occlusion edges, no data). 30 frames, ~66 % valid (windows and the far
    background give no depth), 0.18-0.83 m (median 0.27 m).
``kinect`` -- mrpt-common (apt), ``/usr/share/mrpt/datasets/tests_rgbd.rawlog``: one Kinect frame (a
    bookshelf, 640x480, sensor label ``OPENNI2``), decoded here in pure numpy; layout below. 1 frame,
    ~89 % valid, 1.6-2.6 m.

MRPT rawlog layout (read from MRPT's ``CArchive``, ``CObservation3DRangeScan``, ``CImage``, ``TCamera``
and ``CPose3D`` serialization code, and checked byte by byte: the file's fields parse to its last byte).
The file is gzip-compressed; the stream is a sequence of serialized objects, all little-endian. An object
is ``uint8 (0x80 | len(name))``, the class name (ASCII), ``uint8 version``, the payload, then the end flag
``0x88``; objects nested as fields (``CPose3D``, ``CImage``, ``TCamera``) use the same framing. Strings are
``uint32 length`` + bytes; ``bool`` is one byte. ``CObservation3DRangeScan`` version 9 (10 appends extra
range layers, also accepted)::

    float32 maxRange                                  5.0
    CPose3D sensorPose     v3: 12 float64 = x, y, z, then the 3x3 rotation row by row (v2: x y z qr qx qy qz)
    bool hasPoints3D; [uint32 N; float32 x[N], y[N], z[N]; uint16 col[N], row[N]]   (v >= 8 for col/row)
    bool hasRangeImage; float32 rangeUnits (m per unit, 0.001); uint32 rows, cols; uint16 range[rows*cols]
    bool hasIntensityImage; CImage intensityImage
        v9: bool external; [string file] | bool color; color: int32 w, h; w, h < 0: raw BGR rows of
        3*|w| bytes; else uint32 n + a JPEG of n bytes | gray: int32 w, h, origin, size, [int32 depth (v9)],
        bool zip, raw bytes
    bool hasConfidenceImage; [CImage]
    TCamera cameraParams (depth)  v4: float64 focalLengthMeters, dist[8], fx, fy, cx, cy; uint32 nrows, ncols
                                  (v5: + string name; v6: + uint8 distortion model)
    TCamera cameraParamsIntensity; CPose3D relativePoseIntensityWRTDepth
    float32 stdError; uint64 timestamp; string sensorLabel
    bool points3D external; string file; bool range external; string file
    bool range_is_depth; int8 intensityImageChannel (0 = visible); bool hasPixelLabels
    [v10: uint8 nLayers; per layer: string name, uint32 rows, cols, uint16 data]

The Debian file holds one such object (5,908,231 bytes decompressed): 273,225 stored 3D points, a
640x480 range image in millimetres (``range_is_depth``: it is the z coordinate, not the ray length), a raw
640x480 BGR image, no confidence image, ``maxRange`` 5 m. The rotation order (row by row) is confirmed by
the file: ``relativePoseIntensityWRTDepth`` reads as MRPT's camera-axes rotation (yaw = roll = -90 deg)
with a 1.5 mm translation. 3D points are skipped (they are the range
image deprojected with the depth intrinsics; checked to 1e-7 m). Registration: the stored intrinsics
(depth ``fx=572.88 fy=542.74 cx=314.65 cy=240.16``, colour ``521.18 493.03 322.52 259.06``) are MRPT's
generic defaults (the example calibration in the ``CKinect``/``COpenNI2Sensor`` documentation) and the
stored depth-to-colour pose lacks the Kinect's ~2.5 cm baseline (translation 1.5 mm), so they do not
describe this device: projecting with them shrinks the depth by 9 % and moves its edges off the objects,
whereas the range image already has the colour image's scale and framing (the OpenNI2 driver registers
depth to colour: invalid bands on all four borders). The range image is therefore taken as registered,
corrected by a residual offset of :data:`MRPT_RESIDUAL_SHIFT` = 7 px right, 1 px up, measured on this frame
(three edge-alignment scores -- mean image gradient at depth edges, fraction of depth edges on strong
image edges, gradient-orientation agreement -- all peak at 7-8 px right, 1-2 px up; the mean gradient
rises from 75 to 85). An observation whose intrinsics are not MRPT's defaults is instead projected with
its stored intrinsics and pose (z-buffer and gap filling as for castel; lens distortion ignored). Anything
else -- another class, another version, an external image or range file, an infrared intensity
channel, pixel labels, a zip-compressed gray image, a truncated stream -- raises :class:`RGBDReadError`
naming the file and the problem.

Users' captures (:func:`read_rgbd_folder`, :func:`load_pair`): ``ROOT/{real,spoof}/<medium>/<id>_rgb.(png|
jpg|jpeg)`` + ``<id>_depth.png`` (one channel, 8- or 16-bit). ``<medium>`` is the display for spoofs
(``iphone12``, ``eink``, ...) and any name (``object``) for reals. The depth of a user's capture is
returned in the file's raw units (e.g. millimetres in a 16-bit ToF PNG, 0-255 in an 8-bit one; 0 =
unknown); the RGB's EXIF orientation is applied to both; a depth map of another size than the RGB (ToF
sensors have few pixels) is resized to it by nearest neighbour. A pair whose depth is missing or unreadable is skipped, logged and listed, never fatal.

References: D. Scharstein et al., "High-resolution stereo datasets with subpixel-accurate ground truth",
GCPR 2014 (Middlebury 2014); D. Scharstein and C. Pal, "Learning conditional random fields for stereo",
CVPR 2007 (Middlebury 2006, Aloe).

Deviations / choices: Aloe has no metric scale (``metric=False``); castel and the MRPT frame ignore lens
distortion; the MRPT frame's registration offset is measured on the frame itself (its stored calibration
is a placeholder); no hole filling beyond 1-pixel gaps.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from trustvis.data.io import DEFAULT_MAX_BYTES, ImageReadError, load_image
from trustvis.data.sources import get_source

log = logging.getLogger(__name__)

__all__ = [
    "RGBDFrame",
    "RGBDReadError",
    "RGBD_SOURCES",
    "real_rgbd_frames",
    "rgbd_status",
    "read_middlebury",
    "read_aloe",
    "read_visp_castel",
    "read_mrpt_rawlog",
    "load_depth_png",
    "PairItem",
    "RGBDFolder",
    "read_rgbd_folder",
    "load_pair",
]

#: Source name -> one line on what it holds (the order of :func:`real_rgbd_frames`).
RGBD_SOURCES: dict[str, str] = {
    "middlebury": "scikit-image Middlebury 2014 Motorcycle: left image + ground-truth disparity, metric",
    "aloe": "OpenCV Aloe (opencv-doc): left image + ground-truth disparity, depth up to scale",
    "castel": "ViSP mbt-depth/castel (visp-images-data): 30 gray frames + Intel SR300 depth",
    "kinect": "MRPT tests_rgbd.rawlog (mrpt-common): one Kinect colour + depth frame",
}

# Middlebury 2014 Motorcycle at scikit-image's 4x reduced size (stereo_motorcycle docstring).
MIDDLEBURY_F = 994.978  # px
MIDDLEBURY_DOFFS = 31.086  # px
MIDDLEBURY_BASELINE = 193.001  # mm
#: Aloe depth = ALOE_K / disparity: the median valid disparity of aloeGT.png, so the median depth is 1.
ALOE_K = 59.0
#: Metres per raw unit of ViSP's castel depth_image_*.bin (SR300 depth scale).
CASTEL_DEPTH_SCALE = 0.000124986647
CASTEL_DEPTH_K = (476.0536193848, 476.0534973145, 311.4845581055, 246.2832336426)  # fx fy cx cy
CASTEL_COLOR_K = (615.1674804688, 615.1675415039, 312.1889953613, 243.4373779297)
#: MRPT's generic default Kinect intrinsics (fx, fy, cx, cy): depth, then colour.
MRPT_DEFAULT_DEPTH_K = (572.882768, 542.73998, 314.649173, 240.160459)
MRPT_DEFAULT_COLOR_K = (521.179233, 493.033034, 322.515987, 259.055966)
#: (dx, dy) pixels the MRPT range image is moved to sit on the colour image (measured on tests_rgbd).
MRPT_RESIDUAL_SHIFT = (7, -1)
#: Frames in visp-images-data's castel sequence.
CASTEL_FRAMES = 30
_MRPT_CLASS = "mrpt::obs::CObservation3DRangeScan"
_MRPT_END = 0x88
_GAP_TOLERANCE = 0.03  # relative depth difference under which a 1-pixel gap is filled

_INSTALL = {
    "middlebury": "pip install scikit-image",
    "aloe": "sudo apt-get install opencv-doc",
    "castel": "sudo apt-get install visp-images-data",
    "kinect": "sudo apt-get install mrpt-common",
}
_LAYOUT = (
    "expected ROOT/{real,spoof}/<medium>/<id>_rgb.(png|jpg|jpeg) with <id>_depth.png next to it "
    "(<medium>: the display for spoofs, e.g. 'object' for reals)"
)
_RGB_RE = re.compile(r"^(?P<id>.+)_rgb\.(png|jpg|jpeg)$", re.IGNORECASE)
_DEPTH_RE = re.compile(r"^(?P<id>.+)_depth\.png$", re.IGNORECASE)
_MODE_WORDS = {
    "RGB": "3-channel RGB",
    "RGBA": "4-channel RGBA",
    "LA": "2-channel LA",
    "P": "palette (P)",
    "1": "1-bit",
}
_DEPTH_MODES = frozenset({"L", "I;16", "I;16L", "I;16B", "I;16N"})  # 1-channel 8- and 16-bit


class RGBDReadError(ValueError):
    """An RGB-D data file has an unexpected structure (wrong header, class, version, truncated, ...).

    Attributes:
        path: The file.
        reason: What is wrong, in one line.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).splitlines())  # one line, whatever a library said
        super().__init__(f"Cannot read {self.path}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


@dataclass
class RGBDFrame:
    """One real RGB + depth frame.

    Attributes:
        name: Unique id, e.g. ``"middlebury/motorcycle"``, ``"castel/0007"``, ``"kinect/mrpt-0"``.
        scene: The scene it shows (frames of one scene must stay in one split).
        rgb: ``uint8 (H, W, 3)``; a gray sensor gives three equal channels.
        depth: ``float32 (H, W)`` in metres, registered to ``rgb``'s pixels; 0 = unknown.
        sensor: Where the depth comes from: ``"stereo-gt"``, ``"sr300"`` or ``"kinect"``.
        source: Package and file path, for the manifest.
        metric: False when the depth is known only up to scale (Aloe).
    """

    name: str
    scene: str
    rgb: np.ndarray
    depth: np.ndarray
    sensor: str
    source: str
    metric: bool = True


# ---- package sources ------------------------------------------------------------------------------


def _files(name: str) -> dict[str, Path]:
    """Member name -> path of the installed files of RGB-D source ``name`` (empty if not installed)."""
    return dict(get_source(name).named_files())


def _missing(name: str) -> FileNotFoundError:
    s = get_source(name)
    return FileNotFoundError(
        f"RGB-D source {name!r} ({s.package}) is not installed (looked in {s.base}); install it with: "
        f"{_INSTALL[name]}"
    )


def read_middlebury() -> list[RGBDFrame]:
    """The Middlebury 2014 Motorcycle frame shipped in scikit-image, with metric depth.

    Raises:
        FileNotFoundError: scikit-image or its data files are missing.
    """
    files = _files("middlebury")
    if set(files) != {"motorcycle_left", "motorcycle_disp"}:
        raise _missing("middlebury")
    rgb = load_image(files["motorcycle_left"])
    path = files["motorcycle_disp"]
    try:
        with np.load(path) as z:
            disp = np.asarray(z["arr_0"], dtype=np.float64)
    except (OSError, KeyError, ValueError, zlib.error, EOFError) as e:
        raise RGBDReadError(path, f"not a readable disparity .npz with array 'arr_0' ({e})") from e
    if disp.shape != rgb.shape[:2]:
        raise RGBDReadError(path, f"disparity is {disp.shape}, the image {rgb.shape[:2]}")
    valid = np.isfinite(disp) & (disp + MIDDLEBURY_DOFFS > 0)
    depth = np.zeros(disp.shape, np.float32)
    depth[valid] = MIDDLEBURY_F * MIDDLEBURY_BASELINE / (disp[valid] + MIDDLEBURY_DOFFS) / 1000.0
    src = f"scikit-image: {files['motorcycle_left']} + {path}"
    return [RGBDFrame("middlebury/motorcycle", "middlebury-motorcycle", rgb, depth, "stereo-gt", src)]


def read_aloe() -> list[RGBDFrame]:
    """OpenCV's Aloe frame (opencv-doc): left image and depth ``ALOE_K / disparity``, up to scale.

    Raises:
        FileNotFoundError: opencv-doc is not installed.
    """
    files = _files("aloe")
    if set(files) != {"aloeL", "aloeGT"}:
        raise _missing("aloe")
    rgb = load_image(files["aloeL"])
    disp = load_depth_png(files["aloeGT"])
    if disp.shape != rgb.shape[:2]:
        raise RGBDReadError(files["aloeGT"], f"disparity is {disp.shape}, the image {rgb.shape[:2]}")
    depth = np.zeros(disp.shape, np.float32)
    valid = disp > 0
    depth[valid] = ALOE_K / disp[valid]
    src = f"opencv-doc: {files['aloeL']} + {files['aloeGT']}"
    return [RGBDFrame("aloe", "aloe", rgb, depth, "stereo-gt", src, metric=False)]


def _read_visp_depth(path: Path) -> np.ndarray:
    """Raw ``uint16 (H, W)`` depth of a ViSP ``depth_image_*.bin`` (header checked against the length)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RGBDReadError(path, f"cannot read file ({e.strerror or e})") from e
    if len(data) < 8:
        raise RGBDReadError(path, f"file has {len(data)} bytes, fewer than the 8-byte height/width header")
    h, w = struct.unpack_from("<II", data)
    need = 2 * h * w
    if h == 0 or w == 0 or h > 20000 or w > 20000 or len(data) - 8 != need:
        raise RGBDReadError(
            path,
            f"header says {h}x{w} uint16 depth ({need:,} bytes) but {len(data) - 8:,} bytes follow the "
            "8-byte header (expected: uint32 height, uint32 width, height*width little-endian uint16)",
        )
    return np.frombuffer(data, "<u2", h * w, 8).reshape(h, w)


def _read_matrix44(path: Path) -> np.ndarray:
    try:
        m = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise RGBDReadError(path, f"not a readable 4x4 matrix ({e})") from e
    if m.shape != (4, 4) or not np.all(np.isfinite(m)) or not np.allclose(m[3], [0, 0, 0, 1]):
        raise RGBDReadError(path, f"expected a 4x4 homogeneous matrix, got shape {m.shape}")
    return m


def read_visp_castel(root: Path | None = None) -> list[RGBDFrame]:
    """ViSP's castel sequence: gray frames with SR300 depth registered to them (metres).

    Args:
        root: Folder holding ``image_%04d.pgm`` and ``depth_image_%04d.bin``, with ``depth_M_color.txt``
            in its parent (default: the visp-images-data folder under the apt root).

    Raises:
        FileNotFoundError: The package (or ``root``) is missing.
        RGBDReadError: A depth file or the extrinsic has an unexpected structure.
    """
    if root is None:
        base = get_source("castel").base_dir()
        if base is None:
            raise _missing("castel")
        root = base / "castel"
    root = Path(root)
    images = sorted(root.glob("image_[0-9][0-9][0-9][0-9].pgm")) if root.is_dir() else []
    if not images:
        raise FileNotFoundError(
            f"No ViSP castel frames (image_NNNN.pgm) in {root}; install them with: {_INSTALL['castel']}"
        )
    extrinsic = root.parent / "depth_M_color.txt"
    if not extrinsic.is_file():
        raise FileNotFoundError(f"ViSP castel extrinsic {extrinsic} is missing")
    color_M_depth = np.linalg.inv(_read_matrix44(extrinsic))
    frames = []
    for img_path in images:
        idx = img_path.stem.split("_")[-1]
        depth_path = root / f"depth_image_{idx}.bin"
        if not depth_path.is_file():
            log.warning("ViSP castel frame %s has no depth file %s; skipped", img_path, depth_path.name)
            continue
        rgb = load_image(img_path)
        raw = _read_visp_depth(depth_path)
        depth = _register(
            raw.astype(np.float32) * np.float32(CASTEL_DEPTH_SCALE),
            CASTEL_DEPTH_K,
            CASTEL_COLOR_K,
            color_M_depth[:3, :3],
            color_M_depth[:3, 3],
            rgb.shape[:2],
        )
        src = f"visp-images-data: {img_path} + {depth_path.name}"
        frames.append(RGBDFrame(f"castel/{idx}", "castel", rgb, depth, "sr300", src))
    return frames


def _register(
    depth: np.ndarray,
    k_depth: Sequence[float],
    k_color: Sequence[float],
    rot: np.ndarray,
    trans: np.ndarray,
    out_shape: tuple[int, int],
    *,
    range_is_depth: bool = True,
) -> np.ndarray:
    """Depth (metres, 0 = unknown) seen by the depth camera -> the same surface in colour-camera pixels.

    Each valid pixel is deprojected with ``k_depth`` (pinhole, no distortion), moved by ``rot @ p +
    trans`` (colour frame from depth frame), projected with ``k_color`` to the nearest pixel; per pixel the
    nearest point wins. Then 1-pixel gaps between two similar depths are filled (module docstring).
    """
    fx, fy, cx, cy = k_depth
    v, u = np.nonzero(depth > 0)
    z = depth[v, u].astype(np.float64)
    x, y = (u - cx) / fx, (v - cy) / fy
    if not range_is_depth:  # range along the ray -> z
        z = z / np.sqrt(x * x + y * y + 1.0)
    pts = np.stack([x * z, y * z, z])  # (3, N) depth-camera frame
    pts = np.asarray(rot, np.float64) @ pts + np.asarray(trans, np.float64).reshape(3, 1)
    fx2, fy2, cx2, cy2 = k_color
    h, w = out_shape
    front = pts[2] > 1e-6
    pts = pts[:, front]
    u2 = np.rint(fx2 * pts[0] / pts[2] + cx2)
    v2 = np.rint(fy2 * pts[1] / pts[2] + cy2)
    inside = (u2 >= 0) & (u2 < w) & (v2 >= 0) & (v2 < h)
    lin = (v2[inside] * w + u2[inside]).astype(np.int64)
    out = np.full(h * w, np.inf)
    np.minimum.at(out, lin, pts[2][inside])  # z-buffer: the nearest point per pixel
    out[np.isinf(out)] = 0.0
    out = out.astype(np.float32)
    return _fill_gaps(out.reshape(h, w))


def _fill_gaps(depth: np.ndarray) -> np.ndarray:
    """Fill 1-pixel holes whose two opposite neighbours are valid and within 3 % (rows, then columns)."""
    for axis in (1, 0):
        d = np.moveaxis(depth, axis, -1)  # a view: filling it fills ``depth``
        a, mid, b = d[..., :-2], d[..., 1:-1], d[..., 2:]
        ok = (mid == 0) & (a > 0) & (b > 0) & (np.abs(a - b) <= _GAP_TOLERANCE * np.minimum(a, b))
        mid[ok] = 0.5 * (a[ok] + b[ok])
    return depth


# ---- MRPT rawlog ----------------------------------------------------------------------------------


class _Stream:
    """Little-endian reader over the decompressed rawlog; errors name the file, the byte and the field."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, reason: str) -> RGBDReadError:
        return RGBDReadError(self.path, f"{reason} (at byte {self.pos:,} of the decompressed stream)")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise RGBDReadError(
                self.path,
                f"truncated: the stream ends at byte {len(self.data):,} while reading {what} "
                f"({n:,} bytes from byte {self.pos:,})",
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def one(self, fmt: str, what: str):
        return self.unpack(fmt, what)[0]

    def array(self, dtype: str, n: int, what: str) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(n * dt.itemsize, what), dt, n)

    def string(self, what: str) -> str:
        n = self.one("I", f"the length of {what}")
        if n > 1 << 20:
            raise self.fail(f"{what} claims {n:,} bytes")
        return self.take(n, what).decode("latin-1")

    def begin(self, cls: str, versions: Sequence[int], what: str) -> int:
        """An object header: ``0x80|len``, the class name, the version; returns the version."""
        start = self.pos
        tag = self.one("B", f"the object header of {what}")
        if not tag & 0x80:
            self.pos = start
            raise self.fail(f"{what}: expected an MRPT object header (0x80 | name length), got 0x{tag:02x}")
        name = self.take(tag & 0x7F, f"the class name of {what}").decode("latin-1")
        if not (name.isprintable() and "::" in name):
            self.pos = start
            raise self.fail(f"{what}: no MRPT object header here (not an MRPT rawlog?)")
        if name != cls:
            self.pos = start
            raise self.fail(f"{what} is a {name!r}, expected {cls!r}")
        version = self.one("B", f"the version of {what}")
        if version not in versions:
            raise self.fail(
                f"{what} ({cls}) has serialization version {version}; this reader knows {list(versions)}"
            )
        return version

    def end(self, what: str) -> None:
        flag = self.one("B", f"the end flag of {what}")
        if flag != _MRPT_END:
            self.pos -= 1
            raise self.fail(f"{what}: end flag 0x{flag:02x} instead of 0x88 (unexpected layout)")


def _pose3d(s: _Stream, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A ``CPose3D`` object -> (rotation 3x3, translation 3)."""
    v = s.begin("mrpt::poses::CPose3D", (2, 3), what)
    if v == 3:
        vals = s.unpack("12d", what)
        t, rot = np.array(vals[:3]), np.array(vals[3:]).reshape(3, 3)
    else:
        x, y, z, qr, qx, qy, qz = s.unpack("7d", what)
        t = np.array([x, y, z])
        n = np.sqrt(qr * qr + qx * qx + qy * qy + qz * qz) or 1.0
        qr, qx, qy, qz = qr / n, qx / n, qy / n, qz / n
        rot = np.array(
            [
                [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qr * qz), 2 * (qx * qz + qr * qy)],
                [2 * (qx * qy + qr * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qr * qx)],
                [2 * (qx * qz - qr * qy), 2 * (qy * qz + qr * qx), 1 - 2 * (qx * qx + qy * qy)],
            ]
        )
    s.end(what)
    return rot, t


def _camera(s: _Stream, what: str) -> tuple[float, float, float, float]:
    """A ``TCamera`` object -> (fx, fy, cx, cy)."""
    v = s.begin("mrpt::img::TCamera", (4, 5, 6), what)
    vals = s.unpack("13d", what)  # focalLengthMeters, dist[8], fx, fy, cx, cy
    s.unpack("2I", what)  # nrows, ncols
    if v >= 5:
        s.string(f"the camera name of {what}")
    if v >= 6:
        s.one("B", f"the distortion model of {what}")
    s.end(what)
    return vals[9], vals[10], vals[11], vals[12]


def _image(s: _Stream, what: str) -> np.ndarray:
    """A ``CImage`` object -> ``uint8 (H, W, 3)`` RGB."""
    v = s.begin("mrpt::img::CImage", (6, 7, 8, 9), what)
    if s.one("B", f"the external-storage flag of {what}"):
        name = s.string(f"the external file of {what}")
        raise s.fail(f"{what} is stored in an external file {name!r}, which is not read")
    if s.one("B", f"the colour flag of {what}"):
        w, h = s.unpack("2i", f"the size of {what}") if v >= 7 else (1, 1)
        if w < 0 and h < 0:  # v8 raw BGR rows
            w, h = -w, -h
            if w > 20000 or h > 20000:
                raise s.fail(f"{what} claims {w}x{h} pixels")
            bgr = s.array("u1", w * h * 3, f"the pixels of {what}").reshape(h, w, 3)
            rgb = np.ascontiguousarray(bgr[..., ::-1])
        elif w >= 1 and h >= 1:
            n = s.one("I", f"the JPEG length of {what}")
            rgb = _decode_jpeg(s, s.take(n, f"the JPEG of {what}"), what)
        else:
            raise s.fail(f"{what} is empty ({w}x{h})")
    else:
        w, h, _origin, size = s.unpack("4i", f"the header of {what}")
        if v >= 9:
            pix_depth = s.one("i", f"the pixel depth of {what}")
            if pix_depth != 0:  # PixelDepth::D8U
                raise s.fail(f"{what} is a gray image of pixel depth code {pix_depth}; only 8-bit is read")
        if s.one("B", f"the zip flag of {what}"):
            raise s.fail(f"{what} is a zip-compressed gray image, which is not read")
        if w <= 0 or h <= 0 or size != w * h:
            raise s.fail(f"{what} is a gray image of {w}x{h} with {size} bytes; only unpadded 8-bit is read")
        gray = s.array("u1", size, f"the pixels of {what}").reshape(h, w)
        rgb = np.repeat(gray[..., None], 3, axis=2)
    s.end(what)
    return rgb


def _decode_jpeg(s: _Stream, data: bytes, what: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise s.fail(f"the JPEG of {what} cannot be decoded ({e})") from e


def _range_scan(s: _Stream) -> dict:
    """One ``CObservation3DRangeScan`` (versions 9 and 10) -> the fields the reader uses."""
    v = s.begin(_MRPT_CLASS, (9, 10), "the observation")
    s.one("f", "maxRange")
    _pose3d(s, "sensorPose")
    if s.one("B", "hasPoints3D"):
        n = s.one("I", "the number of 3D points")
        s.take(16 * n, f"{n:,} 3D points")  # float32 x, y, z + uint16 col, row each
    if not s.one("B", "hasRangeImage"):
        raise s.fail("the observation has no range image")
    units = s.one("f", "rangeUnits")
    rows, cols = s.unpack("2I", "the range image size")
    if not (0 < rows <= 20000 and 0 < cols <= 20000) or not (0 < units < 1e3):
        raise s.fail(f"implausible range image {rows}x{cols} with units {units}")
    rng = s.array("<u2", rows * cols, f"the {rows}x{cols} range image").reshape(rows, cols)
    if not s.one("B", "hasIntensityImage"):
        raise s.fail("the observation has no intensity (colour) image")
    rgb = _image(s, "intensityImage")
    if s.one("B", "hasConfidenceImage"):
        _image(s, "confidenceImage")
    k_depth = _camera(s, "cameraParams")
    k_color = _camera(s, "cameraParamsIntensity")
    rot, trans = _pose3d(s, "relativePoseIntensityWRTDepth")
    s.one("f", "stdError")
    s.one("Q", "timestamp")
    label = s.string("sensorLabel")
    for what in ("points3D", "rangeImage"):
        if s.one("B", f"the external-storage flag of {what}"):
            raise s.fail(f"the {what} is stored in an external file, which is not read")
        s.string(f"the external file name of {what}")
    range_is_depth = bool(s.one("B", "range_is_depth"))
    channel = s.one("b", "intensityImageChannel")
    if channel != 0:
        raise s.fail(f"the intensity image is channel {channel} (infrared), not the visible colour image")
    if s.one("B", "hasPixelLabels"):
        raise s.fail("the observation has pixel labels, which are not read")
    if v >= 10:
        for _ in range(s.one("B", "the number of extra range layers")):
            s.string("a layer name")
            lr, lc = s.unpack("2I", "a layer size")
            s.take(2 * lr * lc, "a range layer")
    s.end("the observation")
    return {
        "range": rng,
        "units": units,
        "range_is_depth": range_is_depth,
        "rgb": rgb,
        "k_depth": k_depth,
        "k_color": k_color,
        "rot": rot,
        "trans": trans,
        "label": label,
    }


def _shift(depth: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``depth`` moved by ``dx`` columns right and ``dy`` rows down; uncovered pixels are 0."""
    h, w = depth.shape
    out = np.zeros_like(depth)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = depth[ys, xs]
    return out


# MRPT's depth-frame axes (x forward, y left, z up) from the optical frame (x right, y down, z forward).
_MRPT_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _mrpt_depth(obs: dict) -> np.ndarray:
    """The observation's depth (metres) in the colour image's pixels (module docstring)."""
    metres = obs["range"].astype(np.float32) * np.float32(obs["units"])
    h, w = obs["rgb"].shape[:2]
    default = np.allclose(obs["k_depth"], MRPT_DEFAULT_DEPTH_K, atol=1e-6) and np.allclose(
        obs["k_color"], MRPT_DEFAULT_COLOR_K, atol=1e-6
    )
    if default and metres.shape == (h, w):
        if not obs["range_is_depth"]:
            fx, fy, cx, cy = obs["k_depth"]
            v, u = np.mgrid[0:h, 0:w]
            metres = metres / np.sqrt(((u - cx) / fx) ** 2 + ((v - cy) / fy) ** 2 + 1.0).astype(np.float32)
        return _shift(metres, *MRPT_RESIDUAL_SHIFT)
    # p_colour_optical = R^T (A p_depth_optical - t), with the pose given in MRPT's depth-frame axes
    rot_t = obs["rot"].T
    return _register(
        metres,
        obs["k_depth"],
        obs["k_color"],
        rot_t @ _MRPT_FROM_OPTICAL,
        -rot_t @ obs["trans"],
        (h, w),
        range_is_depth=obs["range_is_depth"],
    )


def read_mrpt_rawlog(path: Path | None = None) -> list[RGBDFrame]:
    """The colour + depth frames of an MRPT rawlog made of ``CObservation3DRangeScan`` objects.

    Args:
        path: A ``.rawlog`` (gzip-compressed or plain); default ``datasets/tests_rgbd.rawlog`` of
            mrpt-common under the apt root.

    Returns:
        One frame per observation, named ``kinect/mrpt-<i>``; depth in metres registered to the colour
        image (module docstring).

    Raises:
        FileNotFoundError: The file (or mrpt-common) is missing.
        RGBDReadError: The file is not such a rawlog (other class, version, truncated, ...); the message
            names the file.
    """
    if path is None:
        files = _files("kinect")
        if "tests_rgbd" not in files:
            raise _missing("kinect")
        path = files["tests_rgbd"]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MRPT rawlog {path} does not exist")
    limit = DEFAULT_MAX_BYTES  # a decompression bomb stops here
    try:
        with path.open("rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if compressed else path.open("rb") as f:
            data = f.read(limit + 1)
    except EOFError as e:
        raise RGBDReadError(path, "truncated gzip stream (the compressed file ends early)") from e
    except (OSError, zlib.error) as e:
        raise RGBDReadError(path, f"corrupt gzip stream ({e})") from e
    if not data:
        raise RGBDReadError(path, "the file is empty")
    if len(data) > limit:
        raise RGBDReadError(
            path, f"more than {limit:,} bytes (decompressed); not an RGB-D rawlog this reader takes"
        )
    s = _Stream(data, path)
    frames = []
    while s.pos < len(data):
        obs = _range_scan(s)
        i = len(frames)
        depth = _mrpt_depth(obs)
        src = f"mrpt-common: {path} (observation {i}, sensor {obs['label'] or '?'})"
        frames.append(RGBDFrame(f"kinect/mrpt-{i}", "kinect-mrpt", obs["rgb"], depth, "kinect", src))
    return frames


# ---- all sources ----------------------------------------------------------------------------------

_READERS = {
    "middlebury": read_middlebury,
    "aloe": read_aloe,
    "castel": read_visp_castel,
    "kinect": read_mrpt_rawlog,
}


def _check_names(sources: Sequence[str] | None) -> list[str]:
    names = list(RGBD_SOURCES) if sources is None else list(sources)
    for n in names:
        if n not in RGBD_SOURCES:
            raise KeyError(f"Unknown RGB-D source {n!r}; choose from {list(RGBD_SOURCES)}")
    return names


def real_rgbd_frames(sources: Sequence[str] | None = None) -> list[RGBDFrame]:
    """Every installed frame of the named sources, in the fixed order of :data:`RGBD_SOURCES`.

    Args:
        sources: Source names (default: all). Sources that are not installed are skipped (logged).

    Raises:
        KeyError: An unknown source name (the message lists the valid ones).
        FileNotFoundError: None of the named sources is installed (the message gives the install
            commands).
        RGBDReadError: An installed file has an unexpected structure (the message names it).
    """
    names = _check_names(sources)
    frames: list[RGBDFrame] = []
    missing = []
    for name in RGBD_SOURCES:
        if name not in names:
            continue
        try:
            frames.extend(_READERS[name]())
        except FileNotFoundError as e:
            log.info("RGB-D source %s skipped: %s", name, e)
            missing.append(name)
    if not frames:
        raise FileNotFoundError(
            f"No real RGB-D data installed (sources {names}); install: "
            + "; ".join(f"{n}: {_INSTALL[n]}" for n in (missing or names))
        )
    return frames


def rgbd_status() -> dict[str, int]:
    """Source name -> number of frames installed (0 if missing); from the files present, nothing decoded."""
    out = {}
    for name in RGBD_SOURCES:
        s = get_source(name)
        files = s.named_files()
        if name == "castel":
            have = {item for item, _ in files}
            n = sum(f"image_{i:04d}" in have and f"depth_{i:04d}" in have for i in range(CASTEL_FRAMES))
            out[name] = n if "depth_M_color" in have else 0
        else:
            out[name] = (s.n_items or len(files)) if len(files) == len(s.members) else 0
    return out


# ---- users' captures ------------------------------------------------------------------------------


def _header(path: Path) -> tuple[str, str, tuple[int, int]]:
    """(format, mode, (width, height)) from the file header only; ImageReadError if unreadable."""
    if not path.is_file():
        raise ImageReadError(path, "file does not exist" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")
    try:
        with Image.open(path) as img:
            return img.format or "?", img.mode, img.size
    except UnidentifiedImageError as e:
        raise ImageReadError(path, "not an image file Pillow can identify") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(path, f"unreadable image header ({e})") from e


def _check_depth_header(path: Path, fmt: str, mode: str, size: tuple[int, int]) -> None:
    if fmt != "PNG":
        raise ImageReadError(path, f"depth must be a PNG file, this is {fmt}")
    if mode not in _DEPTH_MODES:
        desc = _MODE_WORDS.get(mode, f"mode {mode}")
        colour = mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr")
        raise ImageReadError(
            path,
            f"depth must be a 1-channel 8- or 16-bit PNG (mode L or I;16), this is a {desc} image"
            + (" (a colour-mapped picture of depth cannot be read back as depth)" if colour else ""),
        )
    if size[0] * size[1] * 6 > DEFAULT_MAX_BYTES:
        raise ImageReadError(path, f"depth map of {size[0]}x{size[1]} pixels is too large")


def load_depth_png(path: str | Path) -> np.ndarray:
    """A depth PNG as ``float32 (H, W)`` raw values (0 = unknown).

    Args:
        path: One-channel 8-bit (mode L) or 16-bit (I;16) PNG.

    Raises:
        ImageReadError: Missing, empty, not a PNG, not one channel of 8 or 16 bits (e.g. an RGB PNG),
            truncated or corrupt; the message names the file.
    """
    path = Path(path)
    fmt, mode, size = _header(path)
    _check_depth_header(path, fmt, mode, size)
    try:
        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img)
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        raise ImageReadError(path, f"corrupt or truncated PNG data ({e or type(e).__name__})") from e
    if arr.ndim != 2 or arr.shape != (size[1], size[0]):
        raise ImageReadError(path, f"decoded to unexpected shape {arr.shape}")
    return arr.astype(np.float32)


@dataclass
class PairItem:
    """One RGB + depth pair of a user's folder.

    Attributes:
        rgb: The ``<id>_rgb.(png|jpg|jpeg)`` file.
        depth: The ``<id>_depth.png`` file.
        label: 0 real (bona fide), 1 spoof (attack).
        medium: The ``<medium>`` folder: the display for spoofs, e.g. ``object`` for reals.
        id: The ``<id>`` part of the file names (a pair is unique by ``(label, medium, id)``; the same id
            under real/ and spoof/ can name the same object, which splits should keep together).
    """

    rgb: Path
    depth: Path
    label: int
    medium: str
    id: str


@dataclass
class RGBDFolder:
    """The pairs of :func:`read_rgbd_folder`, and what was skipped.

    Attributes:
        root: The folder read.
        items: The usable pairs, sorted by (label, medium, id).
        skipped: ``(path, reason)`` of each pair or file left out.
    """

    root: Path
    items: list[PairItem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _check_pair(rgb: Path, depth: Path) -> tuple[str, str] | None:
    """None if the headers look right, else (path, reason)."""
    try:
        _, _, rgb_size = _header(rgb)
    except ImageReadError as e:
        return str(rgb), f"rgb unreadable: {e.reason}"
    try:
        fmt, mode, size = _header(depth)
        _check_depth_header(depth, fmt, mode, size)
    except ImageReadError as e:
        return str(depth), f"depth unreadable: {e.reason}"
    ar_rgb, ar_depth = rgb_size[0] / rgb_size[1], size[0] / size[1]
    if abs(ar_rgb / ar_depth - 1) > 0.02:
        return str(depth), (
            f"depth is {size[0]}x{size[1]} but the rgb {rgb.name} is {rgb_size[0]}x{rgb_size[1]}: another "
            "aspect ratio, so it cannot be registered by resizing"
        )
    return None


def read_rgbd_folder(root: str | Path, check: bool = True) -> RGBDFolder:
    """The RGB + depth pairs under ``root`` (layout in the module docstring).

    Args:
        root: Folder with ``real/`` and/or ``spoof/``.
        check: Open the header of every file: a depth that is not a 1-channel 8/16-bit PNG, or whose
            aspect ratio differs from its rgb's, and an rgb that cannot be opened, skip the pair (pixel
            data is decoded only by :func:`load_pair`). Without it only missing files are caught.

    Returns:
        The pairs and the skipped entries. Each skip is also logged as a warning.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` is not a folder, has neither ``real/`` nor ``spoof/``, or holds no usable pair.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"RGB-D folder {root} does not exist; {_LAYOUT}")
    if not root.is_dir():
        raise ValueError(f"RGB-D folder {root} is not a folder; {_LAYOUT}")
    out = RGBDFolder(root)
    tops = [(lab, root / name) for lab, name in ((0, "real"), (1, "spoof")) if (root / name).is_dir()]
    if not tops:
        found = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:8]
        raise ValueError(f"RGB-D folder {root} has neither real/ nor spoof/ (found {found}); {_LAYOUT}")

    def skip(path: Path | str, reason: str) -> None:
        log.warning("RGB-D pair skipped: %s: %s", path, reason)
        out.skipped.append((str(path), reason))

    for label, top in tops:
        for entry in sorted(top.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_file():
                if _RGB_RE.match(entry.name) or _DEPTH_RE.match(entry.name):
                    skip(entry, f"not inside a <medium> folder of {top.name}/; {_LAYOUT}")
                continue
            _read_medium(entry, label, check, out, skip)
    if not out.items:
        first = f"; first skipped: {out.skipped[0][0]}: {out.skipped[0][1]}" if out.skipped else ""
        raise ValueError(f"No usable RGB-D pair in {root} ({len(out.skipped)} skipped{first}); {_LAYOUT}")
    return out


def _read_medium(folder: Path, label: int, check: bool, out: RGBDFolder, skip) -> None:
    files = {p.name.lower(): p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    rgbs: dict[str, Path] = {}
    for p in sorted(files.values()):
        m = _RGB_RE.match(p.name)
        if not m:
            continue
        if m["id"] in rgbs:
            skip(p, f"a second rgb file for id {m['id']!r} (keeping {rgbs[m['id']].name})")
            continue
        rgbs[m["id"]] = p
    lower_ids = {k.lower() for k in rgbs}
    for p in sorted(files.values()):
        m = _DEPTH_RE.match(p.name)
        if m and m["id"].lower() not in lower_ids:
            skip(p, f"depth without an rgb file ({m['id']}_rgb.png/.jpg) next to it")
    for pid, rgb in sorted(rgbs.items()):
        depth = files.get(f"{pid}_depth.png".lower())
        if depth is None:
            skip(rgb, f"no depth file {pid}_depth.png next to it")
            continue
        if check:
            bad = _check_pair(rgb, depth)
            if bad is not None:
                skip(*bad)
                continue
        out.items.append(PairItem(rgb=rgb, depth=depth, label=label, medium=folder.name, id=pid))


#: EXIF orientation -> the Pillow transpose that undoes it (what ``ImageOps.exif_transpose`` applies).
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _exif_orientation(path: Path) -> int:
    try:
        with Image.open(path) as img:
            return int(img.getexif().get(0x0112, 1))
    except (OSError, ValueError, SyntaxError, TypeError):
        return 1


def load_pair(item: PairItem) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of a pair: ``uint8 (H, W, 3)`` RGB and ``float32 (H, W)`` depth in the file's units.

    The RGB is read by :func:`trustvis.data.io.load_image`, which applies its EXIF orientation; a depth
    PNG carries none, so it is taken to be stored like the RGB's pixels and the same rotation/flip is
    applied to it (the pair stays registered). A depth map of another size than the RGB is then resized
    to it (nearest neighbour, so no depth is invented between a near and a far surface).

    Raises:
        ImageReadError: Either file cannot be read (the message names it).
    """
    rgb = load_image(item.rgb)
    depth = load_depth_png(item.depth)
    method = _EXIF_TRANSPOSE.get(_exif_orientation(item.rgb))
    if method is not None:
        depth = np.asarray(Image.fromarray(depth).transpose(method))
    h, w = rgb.shape[:2]
    if depth.shape != (h, w):
        log.debug("depth %s is %s, resized to the rgb's %dx%d", item.depth, depth.shape, w, h)
        depth = np.asarray(Image.fromarray(depth).resize((w, h), Image.Resampling.NEAREST))
    return rgb, np.ascontiguousarray(depth, dtype=np.float32)
