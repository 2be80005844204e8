"""Adapting pretrained networks (LoRA; later rolling-back fine-tuning and attention-link regularisation)."""
