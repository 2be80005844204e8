"""Shared neural-network building blocks: backbones, frequency transforms, filters."""
