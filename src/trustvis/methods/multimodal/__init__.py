"""Image ↔ speech association: the cross-modal VAE (xmodal.py) and its baselines (jmvae.py, latentreg.py);
what they share (modalities, MLP VAEs, the predict contract) is in base.py."""
