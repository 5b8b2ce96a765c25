# proxylessnas.nas: the ProxylessNAS search space (Cai, Zhu & Han, ICLR 2019, §3 and §4: a
# MobileNetV2 backbone, MBConvs with kernel sizes {3, 5, 7} and expansion ratios {3, 6}, plus a
# zero operation for depth), laid out as the authors' code lays it out (mit-han-lab/proxylessnas
# search/models/super_nets/super_proxyless.py and search/imagenet_arch_search.py): a fixed 3x3
# stride-2 conv, a fixed MBConv (k=3, expansion 1), then per stage `n` searchable layers, each
# one op choice of the six MBConvs plus, wherever the layer keeps its width and stride (the
# reference's `stride == 1 and input_channel == width`; with the default widths, every layer of
# a stage but its first), `zero`, which skips the layer; then a fixed 1x1 feature-mix conv,
# global pooling and the classifier. 6^6 * 7^15 architectures.
#
# nasc's mbconv carries its own identity shortcut (stride 1 and the width kept), exactly where
# the reference's MobileInvertedResidualBlock has one; the reference's Zero candidate plus that
# shortcut computes x, so `zero` here is the identity. The widths are space parameters: the
# defaults are the search space's ImageNet widths (width_stages 24,40,80,96,192,320), and
# Architecture.load("proxylessnas_gpu") records the wider widths of the published GPU net
# (7,119,848 parameters). The reference sets BN eps=1e-3; nasc keeps PyTorch's default BN.

import mobile_ops

# The reference's Zero candidate inside a block with an identity shortcut: the layer is skipped.
block zero(x: image, C: int, stride: int) {
    assert x.channels == C and stride == 1, "zero skips a layer that keeps width and resolution"
    return x
}

let MBCONVS = [mbconv[k=3, e=3], mbconv[k=3, e=6], mbconv[k=5, e=3], mbconv[k=5, e=6],
               mbconv[k=7, e=3], mbconv[k=7, e=6]]

# stages: [channels, layers, stride of the first layer] (width_stages, n_cell_stages,
# stride_stages of the reference's imagenet_arch_search.py)
space proxylessnas(classes: int = 1000, stem: int = 32, first: int = 16,
                   stages: list = [[24, 4, 2], [40, 4, 2], [80, 4, 2], [96, 4, 1], [192, 4, 2],
                                   [320, 1, 1]],
                   last: int = 1280, dropout_p: float = 0.0, in_channels: int = 3) {
    input x: image(in_channels)
    let h = conv_bn_act(x, stem, k=3, stride=2)
    h = mbconv(h, first, k=3, e=1)
    for i, stage in enumerate(stages) {
        let C, n, s = stage
        for j in 0..n {
            let stride = j == 0 ? s : 1
            let skippable = stride == 1 and h.channels == C
            h = choose (skippable ? MBCONVS + [zero] : MBCONVS) @"s{i}.b{j}" (h, C, stride=stride)
        }
    }
    h = conv_bn_act(h, last, k=1)
    output logits = linear(dropout(global_avg_pool(h), p=dropout_p), classes)
}
