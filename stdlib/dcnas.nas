# dcnas.nas: the densely connected search space of DCNAS (Zhang et al., "DCNAS: Densely
# Connected Neural Architecture Search for Semantic Image Segmentation", CVPR 2021, §3.1, §4.1).
#
# Four scales {1/4, 1/8, 1/16, 1/32} with widths F, 2F, 4F, 8F. A stem produces the four-level
# pyramid (layer 0). Every fusion module M(s, l) aggregates the modules of ALL earlier layers
# (the stem included) through the shape-alignment layer H (eq. 4; `align`, lowered by the dcnas
# policy: strided 3x3 convs down, bilinear upsampling + 1x1 conv up, 1x1 conv for the width),
# keeping any non-empty subset of them, then a mixture layer picks one MobileNetV3 block
# (k in {3, 5, 7}, e in {3, 6}; eq. 1-2). With L layers there are 4 * 4 * (1 + ... + L) =
# 8 L (L + 1) connections. The head aggregates all scales of the last layer at 1/4 resolution
# for per-pixel prediction.

import mobile_ops

let MBCONV_V3 = [mbconv[k=3, e=3, se=true, act="hswish"], mbconv[k=3, e=6, se=true, act="hswish"],
                 mbconv[k=5, e=3, se=true, act="hswish"], mbconv[k=5, e=6, se=true, act="hswish"],
                 mbconv[k=7, e=3, se=true, act="hswish"], mbconv[k=7, e=6, se=true, act="hswish"]]

space dcnas(L: int = 14, F: int = 64, classes: int = 19, in_channels: int = 3) {
    input x: image(in_channels)
    let widths = [F, 2 * F, 4 * F, 8 * F]
    let strides = [4, 8, 16, 32]
    # stem: 1/2, 1/4, then one strided conv per coarser level (layer 0 of the pyramid)
    let h = conv_bn_act(conv_bn_act(x, F // 2, k=3, stride=2, act="relu"), F, k=3, stride=2,
                        act="relu")
    let modules = [h]
    for s in 1..4 {
        h = conv_bn_act(h, widths[s], k=3, stride=2, act="relu")
        modules += h
    }
    for l in 1..L + 1 {
        let layer = []
        for s in 0..4 {
            let fused = sum([align(m, channels=widths[s], stride=strides[s], policy="dcnas")
                             for m in pick some of modules @"M{s}.{l}.in"])
            layer += choose MBCONV_V3 @"M{s}.{l}.op" (fused, widths[s])
        }
        modules += layer
    }
    let last = modules[len(modules) - 4:]
    let merged = sum([align(m, channels=F, stride=4, policy="dcnas") for m in last])
    output logits = upsample(conv2d(merged, classes, k=1, bias=true), factor=4)
}
