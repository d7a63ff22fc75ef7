"""GAN families: shapes, ranges, conditioning, config validation, augmentation."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from mammosynth.models import ModelConfig, build_discriminator, build_generator
from mammosynth.models.augment import AUGMENT_OPS, augment, update_p

FAMILIES = ("fastgan", "dcgan")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("res", [(16, 16), (32, 20)])
def test_generator_contract(family, res):
    cfg = ModelConfig.for_family(family, resolution=res, condition="density,view")
    torch.manual_seed(0)
    G = build_generator(cfg.to_dict()).eval()
    assert G.z_dim == cfg.z_dim and G.resolution == res
    assert G.label_axes == {"density": ("A", "B", "C", "D"), "view": ("CC", "MLO")}
    z = torch.randn(3, G.z_dim)
    x = G(z, {"density": torch.tensor([0, 1, 3]), "view": torch.tensor([1, 0, 1])})
    assert x.shape == (3, 1, *res) and x.min() >= -1 and x.max() <= 1
    D = build_discriminator(cfg)
    logits, aux = D(x, {"density": torch.tensor([0, -1, 3]), "view": torch.tensor([1, 0, -1])}, recon_n=2)
    assert logits.shape == (3,) and aux.ndim == 0 and torch.isfinite(aux)


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_change_output(family):
    cfg = ModelConfig.for_family(family, resolution=(16, 16), condition=("density", "finding"))
    torch.manual_seed(0)
    G = build_generator(cfg)
    # make the model non-trivial: a few random weight perturbations beyond init
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.05 * torch.randn_like(p))
    G.eval()
    z = torch.randn(1, G.z_dim).repeat(4, 1)
    x = G(z, {"density": torch.tensor([0, 3, 0, 0]), "finding": torch.tensor([0, 0, 1, 0])})
    assert not torch.allclose(x[0], x[1]), "density label has no effect"
    assert not torch.allclose(x[0], x[2]), "finding label has no effect"
    assert torch.allclose(x[0], x[3]), "same z and labels must give the same image (eval mode)"


def test_unconditioned_ignores_labels():
    G = build_generator(ModelConfig.for_family("fastgan", resolution=(16, 16))).eval()
    z = torch.randn(2, G.z_dim)
    assert torch.equal(G(z, {}), G(z, {"density": torch.tensor([0, 1])}))


def test_bad_labels_rejected():
    G = build_generator(ModelConfig.for_family("fastgan", resolution=(16, 16), condition="view"))
    with pytest.raises(ValueError, match="view"):
        G(torch.randn(2, G.z_dim), {})
    with pytest.raises(ValueError, match="out of range"):
        G(torch.randn(2, G.z_dim), {"view": torch.tensor([0, 2])})


@pytest.mark.parametrize("kw,msg", [
    (dict(family="stylegan3"), "unknown model family"),
    (dict(resolution=(100, 64)), "power of two"),
    (dict(resolution=(128, 84)), "multiple of height/8"),
    (dict(condition="density,age"), "unknown condition axis 'age'"),
    (dict(upsample="bicubic"), "upsample must be one of"),
])
def test_bad_config(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ModelConfig(**kw)


@pytest.mark.parametrize("res", [(128, 80), (256, 160), (512, 320), (1024, 640), (128, 128)])
def test_supported_resolutions(res):
    cfg = ModelConfig(resolution=res)
    assert cfg.base_size[0] == 8 and 8 * 2 ** cfg.levels == res[0]


def test_config_roundtrip():
    cfg = ModelConfig.for_family("dcgan", resolution=(64, 40), condition="view,density")
    assert cfg.condition == ("density", "view")  # schema order
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown model config fields"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})
    # configs saved before the upsample field existed were nearest, the default
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "upsample"}
    assert ModelConfig.from_dict(old).upsample == "nearest"
    bil = ModelConfig.for_family("fastgan", resolution=(32, 20), upsample="bilinear")
    assert ModelConfig.from_dict(bil.to_dict()).upsample == "bilinear"


def test_augment_identity_at_p0_and_differentiable():
    x = torch.rand(4, 1, 32, 20) * 2 - 1
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(augment(x, 0.0, AUGMENT_OPS, g), x, atol=1e-6)
    x.requires_grad_(True)
    y = augment(x, 1.0, AUGMENT_OPS, torch.Generator().manual_seed(1))
    assert not torch.allclose(y, x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # same generator seed -> same augmentation
    a = augment(x.detach(), 0.5, AUGMENT_OPS, torch.Generator().manual_seed(2))
    b = augment(x.detach(), 0.5, AUGMENT_OPS, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_ada_update_direction():
    assert update_p(0.2, 0.9, 0.6, 8, 4, 5.0) > 0.2  # overfitting D -> more augmentation
    assert update_p(0.2, 0.1, 0.6, 8, 4, 5.0) < 0.2
    assert update_p(0.0, -1.0, 0.6, 8, 4, 5.0) == 0.0
    assert update_p(1.0, 1.0, 0.6, 8, 4, 5.0) == 1.0


def test_upsample_conv3x3_matches_upsample_then_conv():
    from mammosynth.models.layers import upsample_conv3x3

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 4)
    w = torch.randn(7, 5, 3, 3)
    ref = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), w, padding=1)
    out = upsample_conv3x3(x, w)
    assert out.shape == ref.shape == (2, 7, 12, 8)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # packed phases: channel 4*o + 2*a + b holds output pixel (2i+a, 2j+b) of channel o
    from mammosynth.models.layers import upsample_kernel

    packed = torch.nn.functional.conv2d(x, upsample_kernel(w), padding=1)
    torch.testing.assert_close(torch.nn.functional.pixel_shuffle(packed, 2), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed[:, 4 * 3 + 2 * 1 + 0], ref[:, 3, 1::2, 0::2], rtol=1e-5, atol=1e-5)
    # a bias reaches every phase of its channel
    bias = torch.randn(7)
    torch.testing.assert_close(upsample_conv3x3(x, w, bias=bias), ref + bias[None, :, None, None],
                               rtol=1e-5, atol=1e-5)


def test_packed_conv3x3_is_a_conv_of_the_shuffled_map():
    import torch.nn.functional as F

    from mammosynth.models.layers import packed_conv3x3

    torch.manual_seed(0)
    x, w, b = torch.randn(2, 12, 5, 7), torch.randn(2, 3, 3, 3), torch.randn(2)
    ref = F.conv2d(F.pixel_shuffle(x, 2), w, b, padding=1)
    torch.testing.assert_close(F.pixel_shuffle(packed_conv3x3(x, w, b), 2), ref)


def test_smooth_upsample_conv_is_bilinear_then_conv():
    """smooth=True: a 5x5 conv (the 3x3 kernel blurred by [1,2,1]^2/16) of the nearest-upsampled
    map, which inside the image equals bilinear upsampling followed by the 3x3 conv."""
    from mammosynth.models.layers import upsample_conv3x3

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 4, dtype=torch.float64)
    w = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    F = torch.nn.functional
    out = upsample_conv3x3(x, w, smooth=True)
    b = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    k5 = F.conv2d(w.reshape(35, 1, 3, 3), (torch.outer(b, b) / 16)[None, None], padding=2).reshape(7, 5, 5, 5)
    torch.testing.assert_close(out, F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), k5, padding=2))
    bilinear = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False), w, padding=1)
    torch.testing.assert_close(out[..., 2:-2, 2:-2], bilinear[..., 2:-2, 2:-2])
    assert not torch.allclose(out, upsample_conv3x3(x, w))


@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
@pytest.mark.parametrize("condition", [("density", "view"), ()])
# 64 rows: one-conv top block, SLE-gated, packed (without the grain layer and the strands)
@pytest.mark.parametrize("res,grain,strands", [((32, 20), True, 8), ((64, 40), True, 8), ((64, 40), False, 0),
                                               ((64, 40), False, 4), ((64, 40), True, 0)])
def test_fastgan_inference_path_equals_training_formula(condition, upsample, res, grain, strands, monkeypatch):
    """Eval mode uses folded norms (SLE gates folded in), low-resolution upsample-convs and
    a packed to-image conv; it must compute the same function as the training-mode graph
    with running statistics."""
    cfg = ModelConfig.for_family("fastgan", resolution=res, condition=condition, upsample=upsample,
                                 output_grain=grain, strands=strands)
    torch.manual_seed(0)
    G = build_generator(cfg)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, b in G.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.3)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
    G.eval()
    z = torch.randn(4, G.z_dim)
    labels = {"density": torch.tensor([0, 1, 2, 3]), "view": torch.tensor([1, 0, 1, 0])} if condition else {}
    from mammosynth.models.inference import prepare_for_inference

    fast = prepare_for_inference(G)(z, labels)
    torch.testing.assert_close(fast, G(z, labels), rtol=1e-4, atol=1e-5)  # the plain eval graph

    def reference_bn(module, inputs, output):  # BatchNorm2d with running stats, by hand
        (x,) = inputs
        m = module
        y = (x - m.running_mean[None, :, None, None]) / torch.sqrt(m.running_var[None, :, None, None] + m.eps)
        return y * m.weight[None, :, None, None] + m.bias[None, :, None, None] if m.affine else y

    bns = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.momentum = 0.0  # the train-mode pass must not move the running statistics
    hooks = [m.register_forward_hook(reference_bn) for m in bns]
    from mammosynth.models import fastgan

    def reference_upsample_conv(x, weight, shuffle=True, smooth=False):  # the textbook graph
        assert shuffle
        F = torch.nn.functional
        up = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if smooth:  # the 3x3 kernel blurred by [1, 2, 1]^2 / 16 into 5x5
            o, i = weight.shape[:2]
            b = torch.tensor([1.0, 2.0, 1.0], dtype=weight.dtype)
            k5 = F.conv2d(weight.reshape(o * i, 1, 3, 3), (torch.outer(b, b) / 16)[None, None], padding=2)
            return F.conv2d(up, k5.reshape(o, i, 5, 5), padding=2)
        return F.conv2d(up, weight, padding=1)

    monkeypatch.setattr(fastgan, "upsample_conv3x3", reference_upsample_conv)
    try:
        G.train()  # slow path graph (upsample, conv, norm, affine), BN outputs replaced by the hook
        slow = G(z, labels)
    finally:
        for h in hooks:
            h.remove()
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("condition", [("density", "view"), ()])
def test_fastgan_inference_cache_reuses_kernels_only_inside_its_scope(condition):
    """Inside ``inference_cache`` eval forwards reuse the weight-derived kernels (same
    output as without); a change of weights after the scope is seen; training ignores it."""
    from mammosynth.models.inference import prepare_for_inference

    cfg = ModelConfig.for_family("fastgan", resolution=(64, 40), condition=condition)
    torch.manual_seed(0)
    G0 = build_generator(cfg).eval()
    G = prepare_for_inference(G0)
    z = torch.randn(3, G.z_dim)
    labels = {"density": torch.tensor([0, 1, 2]), "view": torch.tensor([1, 0, 1])} if condition else {}
    plain = G(z, labels)
    with torch.no_grad(), G.inference_cache():
        first = G(z, labels)
        assert G._cache  # kernels were kept
        keys = set(G._cache)
        torch.testing.assert_close(G(z, labels), first, rtol=0, atol=0)
        assert set(G._cache) == keys
    assert G._cache is None
    torch.testing.assert_close(first, plain, rtol=0, atol=0)
    with torch.no_grad():
        G0.to_img.bias.add_(0.1)
        G0.blocks[-1].convs[0].weight.mul_(3.0)
    with torch.no_grad(), G.inference_cache():
        changed = G(z, labels)
    torch.testing.assert_close(changed, G(z, labels), rtol=0, atol=0)
    assert not torch.allclose(changed, plain)
    G.train()
    with G.inference_cache():
        G(z, labels)
        assert G._cache == {}  # training-mode forwards neither read nor fill it


@pytest.mark.parametrize("smooth", [False, True])
def test_upsample_transposed_kernel_is_upsample_then_conv(smooth):
    import torch.nn.functional as F

    from mammosynth.models.layers import upsample_kernel, upsample_transposed_kernel

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 4)
    w = torch.randn(7, 5, 3, 3)
    k, pad = upsample_transposed_kernel(w, smooth=smooth)
    assert k.shape == ((5, 7, 6, 6) if smooth else (5, 7, 4, 4))
    out = torch.nn.functional.conv_transpose2d(x, k, stride=2, padding=pad)
    assert out.shape == (2, 7, 12, 8)
    packed = F.pixel_shuffle(F.conv2d(x, upsample_kernel(w, smooth=smooth), padding=1), 2)
    torch.testing.assert_close(out, packed, rtol=1e-5, atol=1e-5)


def test_offset_packed_kernels_match_the_packed_convs():
    """The 2x2 offset-packed upsample-conv holds the packed phases at offsets (a, b); the
    2x2 to-image kernel on it (border zeroed) equals the packed 3x3 conv."""
    import torch.nn.functional as F

    from mammosynth.models.layers import (offset_packed_kernel, offset_upsample_kernel, packed_conv3x3,
                                          upsample_kernel, zero_offset_border)

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 4)
    w = torch.randn(3, 5, 3, 3)
    packed = F.conv2d(x, upsample_kernel(w), padding=1)  # [2, 12, 6, 4]
    z = F.conv2d(x, offset_upsample_kernel(w), padding=1)
    assert z.shape == (2, 12, 7, 5)
    for a in (0, 1):
        for b in (0, 1):
            torch.testing.assert_close(z[:, 2 * a + b::4, a:a + 6, b:b + 4], packed[:, 2 * a + b::4],
                                       rtol=1e-5, atol=1e-5)
    z = zero_offset_border(z + 1.0)  # the border must not leak into the next conv
    w2 = torch.randn(2, 3, 3, 3)
    out = F.conv2d(z, offset_packed_kernel(w2))
    assert out.shape == (2, 8, 6, 4)
    torch.testing.assert_close(out, packed_conv3x3(packed + 1.0, w2), rtol=1e-4, atol=1e-4)


def test_noise_inputs_are_used_and_drawn_from_the_latent():
    """Noise maps come from each latent row: an image is a pure function of (z, labels),
    whatever the batch, and the learned strengths really change it."""
    from mammosynth.models.layers import latent_noise

    cfg = ModelConfig.for_family("fastgan", resolution=(64, 40), strands=0)  # the strands: their own test
    assert cfg.noise_blocks == 3
    torch.manual_seed(0)
    G = build_generator(cfg).eval()
    z = torch.randn(5, G.z_dim)
    with torch.no_grad():
        full = G(z)
        torch.testing.assert_close(G(z[3:4]), full[3:4], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(G(z.flip(0)), full.flip(0), rtol=1e-4, atol=1e-5)
        a, b = latent_noise(z[:2], [(4, 4), (8, 8)]), latent_noise(torch.cat([z[1:2], z[:1]]), [(4, 4), (8, 8)])
        torch.testing.assert_close(a[1][0], b[1][1])
        assert not torch.equal(a[0][0], a[0][1])  # different latents, different noise
        assert abs(float(latent_noise(z, [(64, 64)])[0].std()) - 1) < 0.05
        strengths = [blk.noise_strength for blk in G.blocks if blk.noise_strength is not None]
        assert len(strengths) == len(G.blocks) == 3  # 64 rows: 3 up-blocks, all with noise
        G.out_noise_strength.zero_()
        no_out = G(z)
        # the full-resolution output noise: all of its power in the finest octave
        assert (no_out - full).abs().max() > 0
        for s in strengths:
            s.zero_()
        assert (G(z) - no_out).abs().max() > 0.1 * no_out.abs().max()


@pytest.mark.parametrize("orientations", [8, 3])
def test_circular_filter_equals_a_circularly_padded_convolution(orientations):
    """The FFT filter behind the strand input: the direct convolution's result (odd counts
    of kernels too, whose last pair has an empty imaginary half), with and without bias,
    and pixel-unshuffled; a kernel larger than the map is refused."""
    import torch.nn.functional as F

    from mammosynth.models.layers import circular_filter, line_kernels

    torch.manual_seed(0)
    k = line_kernels(orientations) * torch.linspace(0.5, 2.0, orientations)[:, None, None, None]
    x, bias = torch.randn(5, 1, 32, 20), torch.randn(orientations)
    ref = F.conv2d(F.pad(x, (7, 7, 7, 7), mode="circular"), k, bias)
    torch.testing.assert_close(circular_filter(x, k, bias), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(circular_filter(x, k), ref - bias[:, None, None], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(circular_filter(x, k, bias, unshuffle=True), F.pixel_unshuffle(ref, 2),
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="no larger than the map"):
        circular_filter(torch.randn(1, 1, 12, 12), k)


def test_strand_dashes_are_sparse_oriented_and_drawn_at_128_row_scale():
    """The strand input: each orientation keeps a few % of the pixels as dashes along its
    angle (0: along rows, 4 of 8: along columns); above 128 rows they are drawn at 128-row
    scale and upsampled; the gates and the mix really change the image."""
    from mammosynth.models.fastgan import StrandNoise
    from mammosynth.models.layers import line_kernels

    k = line_kernels(8)
    assert k.shape == (8, 1, 15, 15)
    torch.testing.assert_close(k.square().sum(dim=(1, 2, 3)), torch.ones(8))
    assert float(k[k > 0].min()) > 1e-30  # no denormal weights (slow on a CPU)
    torch.manual_seed(0)
    noise = torch.randn(2, 1, 128, 128)
    d = StrandNoise(4, 8, rows=128).dashes(noise)
    assert d.shape == (2, 8, 128, 128) and float(d.min()) == 0.0
    assert 0.03 < float((d > 0).float().mean()) < 0.12
    horizontal, vertical = d[:, 0], d[:, 4]

    def lag_corr(x, dim):  # correlation of neighbours 3 px apart along ``dim``
        a, b = x.narrow(dim, 0, x.shape[dim] - 3), x.narrow(dim, 3, x.shape[dim] - 3)
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    assert lag_corr(horizontal, -1) > 0.5 > 0.1 > lag_corr(horizontal, -2)
    assert lag_corr(vertical, -2) > 0.5 > 0.1 > lag_corr(vertical, -1)
    big = StrandNoise(4, 8, rows=256)
    assert big.scale == 2 and big.dashes(torch.randn(1, 1, 256, 160)).shape == (1, 8, 256, 160)
    assert StrandNoise(4, 8, rows=64).scale == 1
    cfg = ModelConfig.for_family("fastgan", resolution=(64, 40))
    assert cfg.strands == 8
    G = build_generator(cfg).eval()
    assert not any("kernels" in key for key in G.state_dict())  # derived from the config, not saved
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        full = G(z)
        G.strands.mix.weight.zero_()
        assert (G(z) - full).abs().max() > 1e-3


def test_models_written_before_noise_and_texture_head_load_unchanged():
    """A run's config saved without the noise/texture fields means both off, and its
    weights load (no noise strengths, no texture head expected)."""
    legacy = {k: v for k, v in ModelConfig.for_family("fastgan", resolution=(32, 20)).to_dict().items()
              if k not in ("noise_blocks", "texture_channels", "output_noise", "output_grain", "strands")}
    cfg = ModelConfig.from_dict(legacy)
    assert cfg.noise_blocks == 0 and cfg.texture_channels == 0 and cfg.output_noise is False
    assert cfg.output_grain is False and cfg.strands == 0
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert not any("noise" in k or "grain" in k for k in G.state_dict())
    assert not any("texture" in k for k in D.state_dict())
    build_generator(ModelConfig.from_dict(legacy)).load_state_dict(G.state_dict())
    assert ModelConfig.for_family("dcgan", resolution=(32, 32)).noise_blocks == 0
    with pytest.raises(ValueError, match="noise_blocks"):
        ModelConfig(noise_blocks=-1)


def test_discriminator_reconstructs_at_recon_rows_and_old_runs_keep_64():
    """The decoders rebuild the image at ``recon_rows`` (capped by the image's rows); a
    config saved without the field was trained at 64 rows and its weights still load."""
    cfg = ModelConfig.for_family("fastgan", resolution=(128, 80))
    assert cfg.recon_rows == 32
    D32 = build_discriminator(cfg)
    f8 = torch.randn(2, D32.head.in_features, 8, 5)  # D's final map
    assert D32.dec_big(f8).shape[-2:] == (32, 20)
    old = {k: v for k, v in cfg.to_dict().items() if k != "recon_rows"}
    legacy = ModelConfig.from_dict(old)
    assert legacy.recon_rows == 64
    D = build_discriminator(legacy)
    assert D.dec_big(f8).shape[-2:] == (64, 40)
    build_discriminator(ModelConfig.from_dict(old)).load_state_dict(D.state_dict())
    with pytest.raises(RuntimeError):  # the 32-row decoders have one up-block fewer
        D32.load_state_dict(D.state_dict())
    small = build_discriminator(ModelConfig.for_family("fastgan", resolution=(16, 10), recon_rows=64))
    assert small.rec_rows == 16
    for bad in (12, 4, 0):
        with pytest.raises(ValueError, match="recon_rows"):
            ModelConfig.for_family("fastgan", recon_rows=bad)


def test_grain_layer_shapes_the_output_noise_nonlinearly():
    """The grain layer adds GLU(conv(x + s n)) to the last map: with its weights at 0 the
    generator is the one without it (same other weights); trained-like weights make the
    image's response to the output noise non-linear (doubling the noise no longer doubles
    the change)."""
    cfg = ModelConfig.for_family("fastgan", resolution=(32, 20), strands=0)  # the strands are not linear either
    assert cfg.output_grain
    torch.manual_seed(0)
    G = build_generator(cfg).eval()
    plain = build_generator(dataclasses.replace(cfg, output_grain=False)).eval()
    plain.load_state_dict({k: v for k, v in G.state_dict().items() if not k.startswith("grain.")})
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        G.grain.weight.zero_()
        G.grain.bias.zero_()
        torch.testing.assert_close(G(z), plain(z))
        G.grain.weight.normal_(0, 0.5)
        x = torch.randn(3, G.to_img.in_channels, 32, 20)
        n = [torch.randn(3, 1, 32, 20)]
        G.out_noise_strength.fill_(1.0)

        def change(scale):
            return G.output_features(x, [scale * n[0]]) - G.output_features(x, [0 * n[0]])

        assert (change(2.0) - 2 * change(1.0)).abs().max() > 0.1 * change(1.0).abs().max()
        G.grain = None  # without it, the response is linear
        torch.testing.assert_close(change(2.0), 2 * change(1.0))


def test_texture_head_sees_fine_texture_not_brightness():
    """The discriminator's texture head reads the high-pass residual: a constant offset
    leaves it unchanged, fine texture changes it."""
    cfg = ModelConfig.for_family("fastgan", resolution=(32, 20))
    torch.manual_seed(0)
    head = build_discriminator(cfg).texture
    x = torch.randn(2, 1, 32, 20) * 0.1
    smooth = torch.nn.functional.avg_pool2d(x, 5, 1, 2)
    torch.testing.assert_close(head(smooth + 0.3), head(smooth), rtol=1e-5, atol=1e-6)
    assert (head(smooth + 0.5 * torch.randn_like(x)) - head(smooth)).abs().min() > 1e-4


@pytest.mark.parametrize("family", ["fastgan", "dcgan"])
def test_gan_networks_save_and_load_themselves(family, tmp_path):
    """config.json + model.safetensors; the loaded network has the same config and weights
    (so the same images), and the config names the role (generator / discriminator)."""
    import json

    from mammosynth.models import build_discriminator
    from mammosynth.models.base import SavableModel

    cfg = ModelConfig.for_family(family, resolution=(32, 20), condition=("view",), g_channels=4, d_channels=4,
                                 max_channels=16, z_dim=8)
    torch.manual_seed(0)
    for net in (build_generator(cfg), build_discriminator(cfg)):
        net.save_pretrained(tmp_path / type(net).__name__)
        back = type(net).from_pretrained(tmp_path / type(net).__name__)
        assert type(back) is type(net) and back.config == cfg
        for (k, a), (k2, b) in zip(net.state_dict().items(), back.state_dict().items()):
            assert k == k2 and torch.equal(a, b), k
        # the generic loader rebuilds the right class from the config alone
        assert type(SavableModel.from_pretrained(tmp_path / type(net).__name__)) is type(net)
    saved = json.loads((tmp_path / type(net).__name__ / "config.json").read_text())
    assert saved["role"] == "discriminator" and saved["family"] == family
    G = build_generator(cfg).eval()
    G.save_pretrained(tmp_path / "g")
    z = torch.randn(2, 8)
    labels = {"view": torch.tensor([0, 1])}
    with torch.no_grad():
        assert torch.equal(G(z, labels), type(G).from_pretrained(tmp_path / "g").eval()(z, labels))
    (tmp_path / "g" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="model.safetensors"):
        type(G).from_pretrained(tmp_path / "g")
    with pytest.raises(FileNotFoundError, match="not a saved model"):
        type(G).from_pretrained(tmp_path / "nothing")


@pytest.mark.parametrize("shape", [(3, 2, 16, 10), (2, 1, 1, 7), (1, 1, 5, 1), (2, 4, 2, 2)])
def test_box_mean3_is_the_3x3_average_pool_without_padding(shape):
    """The texture head's local mean: the same values and gradients as
    avg_pool2d(count_include_pad=False), on any size (1-px sides too) and layout."""
    from mammosynth.models.layers import box_mean3

    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    w = torch.randn(shape, generator=g, dtype=torch.float64)
    for layout in (torch.contiguous_format, torch.channels_last):
        a = x.clone().contiguous(memory_format=layout).requires_grad_(True)
        b = x.clone().contiguous(memory_format=layout).requires_grad_(True)
        ref = torch.nn.functional.avg_pool2d(a, 3, 1, 1, count_include_pad=False)
        out = box_mean3(b)
        torch.testing.assert_close(out, ref)
        (ref * w).sum().backward()
        (out * w).sum().backward()
        torch.testing.assert_close(b.grad, a.grad)


@pytest.mark.parametrize("shape", [(3, 8, 6, 5), (2, 16, 1, 3), (1, 2, 4, 4)])
def test_glu_and_conv1x1_equal_the_torch_ops_in_either_layout(shape):
    """The training-speed forms (layers.glu, layers.conv1x1): the same values and gradients
    as F.glu(dim=1) and a 1x1 F.conv2d, in NCHW and channels-last, with the layout kept."""
    from mammosynth.models.layers import GLU, conv1x1, glu

    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    wt = torch.randn(5, shape[1], 1, 1, generator=g, dtype=torch.float64)
    bias = torch.randn(5, generator=g, dtype=torch.float64)
    for layout in (torch.contiguous_format, torch.channels_last):
        for fast, ref in ((glu, lambda t: F.glu(t, dim=1)), (GLU(), lambda t: F.glu(t, dim=1)),
                          (lambda t: conv1x1(t, wt, bias), lambda t: F.conv2d(t, wt, bias)),
                          (lambda t: conv1x1(t, wt), lambda t: F.conv2d(t, wt))):
            a = x.clone().contiguous(memory_format=layout).requires_grad_(True)
            b = x.clone().contiguous(memory_format=layout).requires_grad_(True)
            out, want = fast(a), ref(b)
            torch.testing.assert_close(out, want)
            if layout == torch.channels_last and shape[2] * shape[3] > 1:
                assert out.is_contiguous(memory_format=torch.channels_last)
            w = torch.randn(want.shape, generator=g, dtype=torch.float64)
            (out * w).sum().backward()
            (want * w).sum().backward()
            torch.testing.assert_close(a.grad, b.grad)


def test_augment_zoom_and_shift_grid_is_affine_grid():
    """augment's sampling grid for a zoom and a shift: F.affine_grid of that matrix."""
    from mammosynth.models.augment import _zoom_shift_grid

    g = torch.Generator().manual_seed(0)
    inv_s, sx, sy = torch.rand(5, generator=g) + 0.5, torch.randn(5, generator=g), torch.randn(5, generator=g)
    theta = torch.zeros(5, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = inv_s, inv_s, sx, sy
    want = F.affine_grid(theta, [5, 1, 12, 7], align_corners=False)
    torch.testing.assert_close(_zoom_shift_grid(inv_s, sx, sy, 12, 7), want)
