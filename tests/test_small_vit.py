"""The small ViT of trustvis.nn.vit: shapes, the attention it returns, the distillation token (issue 24's base)."""

from __future__ import annotations

import pytest
import torch

from trustvis.nn.vit import SmallViT, ViTShape


def _vit(**kw):
    torch.manual_seed(0)
    return SmallViT(ViTShape(image_size=16, patch=4, width=32, depth=3, heads=4), num_classes=5, **kw).eval()


def test_shapes_and_attention_rows():
    vit = _vit()
    x = torch.rand(2, 3, 16, 16)
    out = vit(x, attention=True)
    assert out["logits"].shape == (2, 5) and out["attention"].shape == (2, 3, 4, 4, 4)
    assert "logits_dist" not in out
    s = out["attention"].sum((-2, -1))  # CLS over the patch keys: all but its weight on itself
    assert ((s > 0) & (s < 1)).all()
    torch.testing.assert_close(vit(x)["logits"], out["logits"])  # reading the attention changes nothing
    assert not torch.equal(out["attention"][0], out["attention"][1])  # it depends on the image


def test_attention_is_the_softmax_of_the_cls_query():
    vit = _vit()
    x = torch.rand(1, 3, 16, 16)
    tokens = vit.tokens(x)
    attn = vit.blocks[0].attn
    h = vit.blocks[0].norm1(tokens)
    q, k, _ = attn.qkv(h).view(1, 17, 3, 4, 8).permute(2, 0, 3, 1, 4)
    expected = (q[:, :, :1] @ k.transpose(-2, -1) / 8**0.5).softmax(-1)[:, :, 0, 1:]  # (1,H,16)
    torch.testing.assert_close(vit(x, attention=True)["attention"][:, 0].flatten(2), expected)


def test_distillation_token_has_its_own_head_and_position():
    vit = _vit(distillation=True)
    x = torch.rand(3, 3, 20, 20)  # resized to 16 inside
    out = vit(x, attention=True)
    assert out["logits_dist"].shape == (3, 5) and vit.pos_embed.shape[1] == 2 + 16
    assert out["attention"].shape[-2:] == (4, 4)
    assert not torch.allclose(out["logits"], out["logits_dist"])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="multiple of the patch"):
        SmallViT(ViTShape(image_size=30, patch=4), 3)
    with pytest.raises(ValueError, match="multiple of the number of heads"):
        SmallViT(ViTShape(width=30, heads=4), 3)
