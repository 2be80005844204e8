"""Real-data sources that ship inside pip and apt packages, and which of them are installed.

trustvis never downloads data. Real photographs and small labelled sets come from files that popular
packages already carry (see ``specs/data_sources.md``): the scikit-image, scikit-learn and matplotlib
wheels (always installed with trustvis) and the Debian packages opencv-doc, mate-backgrounds,
plasma-workspace-wallpapers, libjxl-testdata, dataset-fashion-mnist, visp-images-data and mrpt-common
(optional). Classification sets (``purpose="classification"``: Fashion-MNIST, OpenCV ``digits.png``,
scikit-learn digits) are read by :mod:`trustvis.data.classification`; RGB + depth frames
(``purpose="rgbd"``: Middlebury Motorcycle, OpenCV Aloe, ViSP castel, the Kinect frame of mrpt-common) by
:mod:`trustvis.data.rgbd`; spoken digits (``purpose="speech"``: Tux Paint, the Asterisk prompts; ``"speech
(synthetic)"``: the espeak-ng and flite programs, whose voices are generated into the cache) by
:mod:`trustvis.data.speech`. :data:`SOURCES` lists them; :func:`status` reports what is installed and
:func:`format_status` renders it with the command that installs what is missing (``trustvis data
status``).

Only real *colour photographs* count as photos: synthetic renders, drawings, paintings, screenshots,
text/blur test charts, grayscale images and near-duplicates (stereo or registration pairs such as
motorcycle_left/right, aloeL/R, leuvenA/B, graf1/3, ela_original/modified; downscaled copies of a
wallpaper) are left out, so that every photo is one independent scene and splits by photo do not leak.

Apt paths live under ``/usr/share``. Setting ``TRUSTVIS_APT_ROOT=/some/dir`` prefixes them (the files
are then looked up under ``/some/dir/usr/share/...``), e.g. for packages unpacked with
``dpkg -x pkg.deb /some/dir`` without root, or for tests.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

__all__ = ["Source", "SOURCES", "apt_root", "get_source", "status", "format_status"]

Kind = Literal["pip", "apt"]


def apt_root() -> Path:
    """Prefix for apt package paths: ``$TRUSTVIS_APT_ROOT`` if set, else ``/``."""
    return Path(os.environ.get("TRUSTVIS_APT_ROOT") or "/")


@dataclass(frozen=True)
class Source:
    """One package that carries real data.

    Attributes:
        name: Short source name, used as the prefix of photo ids (``"<name>/<photo>"``).
        kind: ``"pip"`` or ``"apt"``.
        package: Package name for the installer (``pip install X`` / ``apt-get install X``).
        description: One line on what it holds.
        licence: Licence of the data.
        install_hint: Command that installs it.
        purpose: ``"photos"``, ``"classification"``, ``"rgbd"``, ``"speech"`` or ``"speech (synthetic)"``.
        base: Folder holding the files: absolute (under ``/usr/share``) for apt packages, relative to
            the imported module's folder for pip packages.
        members: Item name -> path relative to ``base``. A path may be a glob; with
            ``pick_largest`` only the largest match (by ``WxH`` in the file name, else bytes) is kept.
        module: Import name of a pip package (``skimage`` for scikit-image); found without importing.
        pick_largest: Keep one file per member: the largest (wallpapers ship downscaled copies).
        n_items: Number of items the source provides if not one per file (e.g. 70,000 images in 4
            IDX files).
    """

    name: str
    kind: Kind
    package: str
    description: str
    licence: str
    install_hint: str
    purpose: str
    base: str
    members: Mapping[str, str] = field(default_factory=dict)
    module: str | None = None
    pick_largest: bool = False
    n_items: int | None = None

    def base_dir(self) -> Path | None:
        """Folder holding the files, or ``None`` if the package is not installed."""
        if self.kind == "pip":
            if not self.module:
                return None
            try:
                spec = importlib.util.find_spec(self.module)
            except (ImportError, ValueError):
                return None
            if spec is None or not spec.submodule_search_locations:
                return None
            folder = Path(next(iter(spec.submodule_search_locations))) / self.base
        else:
            folder = apt_root() / self.base.lstrip("/")
        return folder if folder.is_dir() else None

    def named_files(self) -> list[tuple[str, Path]]:
        """``(item name, path)`` for each member file present on this machine, sorted by name."""
        base = self.base_dir()
        if base is None:
            return []
        out: list[tuple[str, Path]] = []
        for item, rel in sorted(self.members.items()):
            if any(ch in rel for ch in "*?["):
                matches = sorted(p for p in base.glob(rel) if p.is_file())
                if not matches:
                    continue
                if self.pick_largest:
                    out.append((item, max(matches, key=_size_key)))
                else:
                    out.extend((f"{item}/{p.stem}", p) for p in matches)
            else:
                p = base / rel
                if p.is_file():
                    out.append((item, p))
        return out

    def files(self) -> list[Path]:
        """The data files this source provides on this machine (empty if not installed)."""
        return [p for _, p in self.named_files()]

    @property
    def installed(self) -> bool:
        """True if at least one of the source's files is present."""
        return bool(self.named_files())


_WXH = re.compile(r"(\d+)x(\d+)")


def _size_key(path: Path) -> tuple[int, int]:
    m = _WXH.search(path.stem)
    pixels = int(m.group(1)) * int(m.group(2)) if m else 0
    return (pixels, path.stat().st_size)


def _same(*names: str, ext: str) -> dict[str, str]:
    return {n: f"{n}{ext}" for n in names}


_OPENCV_DATA = (
    "aero1.jpg aloeL.jpg apple.jpg baboon.jpg board.jpg building.jpg butterfly.jpg chicky_512.png "
    "ela_original.jpg fruits.jpg graf1.png home.jpg left.jpg leuvenA.jpg messi5.jpg orange.jpg "
    "rubberwhale1.png squirrel_cls.jpg stuff.jpg"
).split()

_PLASMA = (
    "BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path "
    "summer_1am Volna"
).split()

SOURCES: list[Source] = [
    Source(
        name="scikit-image",
        kind="pip",
        package="scikit-image",
        module="skimage",
        base="data",
        description="sample photos bundled in the wheel (astronaut, cat, coffee, rocket, ...)",
        licence="CC0 / public domain; Middlebury (motorcycle) research use",
        install_hint="pip install scikit-image",
        purpose="photos",
        members={
            "astronaut": "astronaut.png",
            "chelsea": "chelsea.png",
            "coffee": "coffee.png",
            "hubble_deep_field": "hubble_deep_field.jpg",
            "motorcycle_left": "motorcycle_left.png",
            "retina": "retina.jpg",
            "rocket": "rocket.jpg",
        },
    ),
    Source(
        name="scikit-learn",
        kind="pip",
        package="scikit-learn",
        module="sklearn",
        base="datasets/images",
        description="load_sample_images() photos (china, flower)",
        licence="CC-BY 2.0",
        install_hint="pip install scikit-learn",
        purpose="photos",
        members=_same("china", "flower", ext=".jpg"),
    ),
    Source(
        name="matplotlib",
        kind="pip",
        package="matplotlib",
        module="matplotlib",
        base="mpl-data/sample_data",
        description="grace_hopper.jpg portrait",
        licence="public domain (Wikimedia)",
        install_hint="pip install matplotlib",
        purpose="photos",
        members={"grace_hopper": "grace_hopper.jpg"},
    ),
    Source(
        name="opencv-doc",
        kind="apt",
        package="opencv-doc",
        base="/usr/share/doc/opencv-doc/examples",
        description="OpenCV sample photos (aerial, fruit, baboon, PCB, scene text, ...)",
        licence="Apache-2.0 AND BSD-3-Clause",
        install_hint="sudo apt-get install opencv-doc",
        purpose="photos",
        members={
            **{Path(f).stem: f"data/{f}" for f in _OPENCV_DATA},
            **{f"scenetext{i:02d}": f"text/scenetext{i:02d}.jpg" for i in range(1, 7)},
            **{f"hfs{i:03d}": f"hfs/data/{i:03d}.jpg" for i in range(3)},
            "plant": "alphamat/input_images/plant.jpg",
            "butterfly_superres": "dnn_superres/butterfly.png",
            "home_reg": "reg/home.png",
        },
    ),
    Source(
        name="mate-backgrounds",
        kind="apt",
        package="mate-backgrounds",
        base="/usr/share/backgrounds/mate/nature",
        description="12 nature photos up to 2560x1920 (JPEG)",
        licence="GPL-2+",
        install_hint="sudo apt-get install mate-backgrounds",
        purpose="photos",
        members=_same(
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
            ext=".jpg",
        ),
    ),
    Source(
        name="plasma-workspace-wallpapers",
        kind="apt",
        package="plasma-workspace-wallpapers",
        base="/usr/share/wallpapers",
        description="KDE Plasma photo wallpapers, 2560x1600 to 5120x2880 (largest copy of each)",
        licence="LGPL-3 / CC-BY-SA-4.0 (Volna)",
        install_hint="sudo apt-get install plasma-workspace-wallpapers",
        purpose="photos",
        members={n: f"{n}/contents/images/*.*" for n in _PLASMA},
        pick_largest=True,
    ),
    Source(
        name="libjxl-testdata",
        kind="apt",
        package="libjxl-testdata",
        base="/usr/share/libjxl-testdata",
        description="lossless photos: flower 2268x1512, hdr_room (16-bit), wesaturate 500px CC0 crops",
        licence="BSD-3-Clause (JPEG XL); CC0 (wesaturate)",
        install_hint="sudo apt-get install libjxl-testdata",
        purpose="photos",
        members={
            "flower": "jxl/flower/flower.png",
            "hdr_room": "jxl/hdr_room.png",
            **{
                n: f"external/wesaturate/500px/{n}_srgb8.png"
                for n in ("cvo9xd_keong_macan", "tmshre_riaphotographs", "u76c0g_bliznaca")
            },
        },
    ),
    Source(
        name="fashion-mnist",
        kind="apt",
        package="dataset-fashion-mnist",
        base="/usr/share/datasets/fashion-mnist",
        description="Fashion-MNIST, 70,000 28x28 grayscale images in 10 classes (IDX files)",
        licence="MIT",
        install_hint="sudo apt-get install dataset-fashion-mnist",
        purpose="classification",
        members={
            f"{split}-{kind}": f"{split}-{kind}-ubyte.gz"
            for split in ("train", "t10k")
            for kind in ("images-idx3", "labels-idx1")
        },
        n_items=70_000,
    ),
    Source(
        name="opencv-digits",
        kind="apt",
        package="opencv-doc",
        base="/usr/share/doc/opencv-doc/examples/data",
        description="OpenCV digits.png: 5,000 handwritten digits of 20x20 in 10 classes (one grid image)",
        licence="Apache-2.0 AND BSD-3-Clause",
        install_hint="sudo apt-get install opencv-doc",
        purpose="classification",
        members={"digits": "digits.png"},
        n_items=5_000,
    ),
    Source(
        name="sklearn-digits",
        kind="pip",
        package="scikit-learn",
        module="sklearn",
        base="datasets/data",
        description="load_digits(): 1,797 8x8 handwritten digits in 10 classes (UCI optdigits)",
        licence="CC-BY 4.0 (UCI)",
        install_hint="pip install scikit-learn",
        purpose="classification",
        members={"digits": "digits.csv.gz"},
        n_items=1_797,
    ),
    Source(
        name="tuxpaint-stamps",
        kind="apt",
        package="tuxpaint-stamps-default",
        base="/usr/share/tuxpaint/stamps",
        description="Tux Paint stamps: about 800 colour PNG cut-outs and clip-art in 16 categories (small-data ViTs)",
        licence="GPL-2",
        install_hint="sudo apt-get install tuxpaint-stamps-default",
        purpose="classification",
        members={"stamp": "**/*.png"},
    ),
    # speech (purpose "speech" real, "speech (synthetic)" generated): read by trustvis.data.speech
    Source(
        name="tuxpaint-digits",
        kind="apt",
        package="tuxpaint-stamps-default",
        base="/usr/share/tuxpaint/stamps/symbols/math",
        description="Tux Paint: the digits 0-9 spoken in about 22 languages (Ogg Vorbis), one speaker per language",
        licence="GPL-2",
        install_hint="sudo apt-get install tuxpaint-stamps-default",
        purpose="speech",
        members={
            "en": "[0-9].ogg",
            "lang": "[0-9]_[a-z][a-z].ogg",
            "region": "[0-9]_[a-z][a-z]_[A-Za-z][A-Za-z].ogg",
        },
    ),
    *(
        Source(
            name=f"asterisk-{lang}",
            kind="apt",
            package=f"asterisk-core-sounds-{lang}-wav",
            base=f"/usr/share/asterisk/sounds/{voice}/digits",
            description=f"Asterisk prompts: the digits 0-9 spoken by {voice.rsplit('_', 1)[-1]} ({lang}, 8 kHz WAV)",
            licence="CC-BY-SA-3.0",
            install_hint=f"sudo apt-get install asterisk-core-sounds-{lang}-wav",
            purpose="speech",
            members=_same(*"0123456789", ext=".wav"),
            n_items=10,
        )
        for lang, voice in (
            ("en", "en_US_f_Allison"),
            ("es", "es_MX_f_Allison"),
            ("fr", "fr_CA_f_June"),
            ("it", "it_IT_m_Carlo"),
            ("ru", "ru_RU_f_IvrvoiceRU"),
        )  # fmt: skip
    ),
    Source(
        name="espeak-ng",
        kind="apt",
        package="espeak-ng",
        base="/usr/bin",
        description="espeak-ng formant synthesis: 20 English voices x 10 digits, generated into the cache (SYNTHETIC)",
        licence="GPL-3 (synthetic speech)",
        install_hint="sudo apt-get install espeak-ng",
        purpose="speech (synthetic)",
        members={"espeak-ng": "espeak-ng"},
        n_items=200,
    ),
    Source(
        name="flite",
        kind="apt",
        package="flite",
        base="/usr/bin",
        description="CMU Flite: 5 English voices x 10 digits, generated into the cache (SYNTHETIC)",
        licence="BSD-style (synthetic speech)",
        install_hint="sudo apt-get install flite",
        purpose="speech (synthetic)",
        members={"flite": "flite"},
        n_items=50,
    ),
    # RGB-D (purpose="rgbd"): read by trustvis.data.rgbd; one frame per n_items, counted only when complete.
    Source(
        name="middlebury",
        kind="pip",
        package="scikit-image",
        module="skimage",
        base="data",
        description="RGB-D: Middlebury 2014 Motorcycle left image + ground-truth disparity (metric depth)",
        licence="Middlebury (research use, attribution)",
        install_hint="pip install scikit-image",
        purpose="rgbd",
        members={"motorcycle_left": "motorcycle_left.png", "motorcycle_disp": "motorcycle_disp.npz"},
        n_items=1,
    ),
    Source(
        name="aloe",
        kind="apt",
        package="opencv-doc",
        base="/usr/share/doc/opencv-doc/examples/data",
        description="RGB-D: Middlebury 2006 Aloe left image + ground-truth disparity (depth up to scale)",
        licence="Middlebury (research use, attribution)",
        install_hint="sudo apt-get install opencv-doc",
        purpose="rgbd",
        members={"aloeL": "aloeL.jpg", "aloeGT": "aloeGT.png"},
        n_items=1,
    ),
    Source(
        name="vtest",
        kind="apt",
        package="opencv-doc",
        base="/usr/share/doc/opencv-doc/examples/data",
        description="re-ID: vtest.avi, 795 frames of pedestrians (768x576); tracks built by trustvis.data.reid.vtest",
        licence="as opencv-doc (see its Debian copyright file)",
        install_hint="sudo apt-get install opencv-doc",
        purpose="reid",
        members={"vtest": "vtest.avi"},
        n_items=1,
    ),
    Source(
        name="castel",
        kind="apt",
        package="visp-images-data",
        base="/usr/share/visp-images-data/ViSP-images/mbt-depth/castel",
        description="RGB-D: ViSP castel, 30 gray 640x480 frames + Intel SR300 depth",
        licence="GPL-2",
        install_hint="sudo apt-get install visp-images-data",
        purpose="rgbd",
        members={
            "depth_M_color": "depth_M_color.txt",
            **{f"image_{i:04d}": f"castel/image_{i:04d}.pgm" for i in range(30)},
            **{f"depth_{i:04d}": f"castel/depth_image_{i:04d}.bin" for i in range(30)},
        },
        n_items=30,
    ),
    Source(
        name="kinect",
        kind="apt",
        package="mrpt-common",
        base="/usr/share/mrpt/datasets",
        description="RGB-D: one Kinect colour + depth frame (MRPT tests_rgbd.rawlog)",
        licence="BSD-3-Clause",
        install_hint="sudo apt-get install mrpt-common",
        purpose="rgbd",
        members={"tests_rgbd": "tests_rgbd.rawlog"},
        n_items=1,
    ),
]


def get_source(name: str) -> Source:
    """The source called ``name``.

    Raises:
        KeyError: Unknown name (the message lists the valid ones).
    """
    for s in SOURCES:
        if s.name == name:
            return s
    raise KeyError(f"Unknown data source {name!r}; choose from {[s.name for s in SOURCES]}")


def status(sources: list[Source] | None = None) -> list[dict]:
    """One row per source: ``name, kind, package, installed, n_images, purpose, install_hint, licence``.

    ``n_images`` counts photos for photo sources and images for data sets (0 when not installed).
    """
    rows = []
    for s in SOURCES if sources is None else sources:
        files = s.named_files()
        complete = len(files) == len(s.members) if s.n_items is not None else bool(files)
        installed = bool(files) and complete
        n = (s.n_items if s.n_items is not None else len(files)) if installed else 0
        rows.append(
            {
                "name": s.name,
                "kind": s.kind,
                "package": s.package,
                "installed": installed,
                "n_images": n,
                "purpose": s.purpose,
                "install_hint": s.install_hint,
                "licence": s.licence,
            }
        )
    return rows


def format_status(rows: list[dict]) -> str:
    """Render :func:`status` rows as an aligned table, then the commands that install what is missing."""
    header = ("source", "kind", "package", "installed", "images", "purpose", "licence")
    table = [header] + [
        (
            r["name"],
            r["kind"],
            r["package"],
            "yes" if r["installed"] else "no",
            str(r["n_images"]),
            r["purpose"],
            r["licence"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n_photos = sum(r["n_images"] for r in rows if r["installed"] and r["purpose"] == "photos")
    lines.append("")
    lines.append(f"{n_photos} real photos available.")
    missing = [r for r in rows if not r["installed"]]
    # several sources can come from one package (opencv-doc: photos and digits): name it once
    apt = list(dict.fromkeys(r["package"] for r in missing if r["kind"] == "apt"))
    pip = list(dict.fromkeys(r["package"] for r in missing if r["kind"] == "pip"))
    if missing:
        lines.append("Missing sources (optional; more photos give more varied patches):")
        for r in missing:
            lines.append(f"  {r['name']}: {r['install_hint']}")
        if apt:
            lines.append(f"Install all missing apt packages: sudo apt-get install {' '.join(apt)}")
            lines.append(
                "  (without root: apt-get download PKG && dpkg -x PKG_*.deb DIR, then set "
                "TRUSTVIS_APT_ROOT=DIR)"
            )
        if pip:
            lines.append(f"Install all missing pip packages: pip install {' '.join(pip)}")
    else:
        lines.append("All sources are installed.")
    return "\n".join(lines)
