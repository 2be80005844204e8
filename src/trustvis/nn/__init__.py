"""Shared neural-network building blocks: backbones, frequency transforms, filters, LoRA layers, a small ViT
that shows its attention (vit.py)."""
