"""Every built-in method, one file each; importing this package registers them all.

detect/cnndet.py          CNNDetection (baseline)      detect/npr.py       NPR (baseline)
detect/bihpf.py           BiHPF (seed method)          detect/frepgan.py   FrePGAN (seed method)
detect/fingerprintnet.py  FingerprintNet (seed method) detect/d4.py        D4 (seed method)
classify/classifier.py    the classification recipe: ResNet + cross-entropy (baseline "classifier")
augment/kmix.py           DCutMix / DMixup (seed method) augment/twoimage.py  Mixup, CutMix (baselines)
calibrate/sctl.py         SCTL (seed method)           calibrate/temperature.py  TS, CTS, ETS, PTS (baselines)
adapt/lora.py             LoRA (seed method; layers and PEFT files in nn/lora.py)
classify/vit.py           small ViT from scratch (baseline "vit")   adapt/deit.py  DeiT distillation token (baseline)
adapt/aal.py              AAL attention links to a frozen CNN (seed method; the teacher in adapt/teacher.py)
anomaly/padim.py          PaDiM (baseline)         anomaly/fyd.py      FYD (seed method)
codec/coolchic.py         COOL-CHIC (baseline)     codec/eqlinr.py     EQLINR (seed method)
antispoof/mtofnet.py      mToFNet (seed method)    antispoof/baselines.py  rgbcnn, silentface, depthcnn, rgbdcnn
reid/rollback.py          rolling-back fine-tuning (seed method)   reid/baselines.py  finetune, fixbase
active/vabal.py           VaB-AL (seed method)     active/baselines.py  random, entropy, margin, bald, coreset
multimodal/xmodal.py      cross-modal VAE (seed method)  multimodal/jmvae.py  JMVAE   multimodal/latentreg.py  latent regressor
"""

from trustvis.methods.active import baselines as active_baselines  # noqa: F401
from trustvis.methods.active import vabal  # noqa: F401
from trustvis.methods.adapt import aal, deit, lora  # noqa: F401
from trustvis.methods.anomaly import fyd, padim  # noqa: F401
from trustvis.methods.antispoof import baselines, mtofnet  # noqa: F401
from trustvis.methods.augment import kmix, twoimage  # noqa: F401
from trustvis.methods.calibrate import sctl, temperature  # noqa: F401
from trustvis.methods.classify import classifier, vit  # noqa: F401
from trustvis.methods.codec import coolchic, eqlinr  # noqa: F401
from trustvis.methods.detect import bihpf, cnndet, d4, fingerprintnet, frepgan, npr  # noqa: F401
from trustvis.methods.multimodal import jmvae, latentreg, xmodal  # noqa: F401
from trustvis.methods.reid import baselines as reid_baselines  # noqa: F401
from trustvis.methods.reid import rollback  # noqa: F401
