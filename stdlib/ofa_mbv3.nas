# ofa_mbv3.nas: the Once-for-All MobileNetV3 space (Cai et al., ICLR 2020, §3 and §4), laid out
# as the authors' code builds `ofa_mbv3_d234_e346_k357_w1.0` (mit-han-lab/once-for-all,
# ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py, OFAMobileNetV3): a 3x3 stride-2
# conv with h-swish, a fixed first block (MBConv k=3, expansion 1, ReLU, identity shortcut), then
# five elastic stages of widths 24, 40, 80, 112, 160 with strides 2, 2, 2, 1, 2, activations
# ReLU, ReLU, h-swish, h-swish, h-swish and SE in the second, fourth and fifth stage. Each stage
# runs the first d of its 4 blocks, d in {2, 3, 4} (the elastic depth), and each block chooses
# its kernel size in {3, 5, 7} and its expansion ratio in {3, 4, 6}; blocks past the depth have
# no decisions, so each stage has 9^2 + 9^3 + 9^4 = 7371 settings and the space 7371^5. Then the
# final 1x1 expansion to 960 (BN, h-swish), global pooling, the 1280-wide feature mix (no BN, no
# bias, h-swish; on the pooled 1x1 map, so a linear layer), dropout and the classifier.
#
# Widths follow the reference's make_divisible(base * width, 8). SE blocks squeeze the expanded
# width by 4 rounded to a multiple of 8 (`se_divisor=8`), with biases, ReLU and h-sigmoid. With
# value choices on kernel and expansion, the space compiles as a weight-shared elastic supernet
# only where a method supports value choices; every sub-network resolves to a plain network.

import mobile_ops

let BASE = [16, 16, 24, 40, 80, 112, 160, 960, 1280]
let STRIDES = [1, 2, 2, 2, 1, 2]
let ACTS = ["relu", "relu", "relu", "hswish", "hswish", "hswish"]
let SE = [false, false, true, false, true, true]

# one block of stage i: kernel size and expansion ratio are this block's own decisions
block ofa_block(x: image, C: int, stride: int, act: str, se: bool, name: str) {
    return mbconv(x, C, k=choose {3, 5, 7} @"{name}.k", e=choose {3, 4, 6} @"{name}.e",
                  stride=stride, se=se, act=act, se_divisor=8)
}

space ofa_mbv3(classes: int = 1000, width: float = 1.0, in_channels: int = 3,
               depths: list = [2, 3, 4], dropout_p: float = 0.1) {
    # make_divisible(base * width, 8), as the reference computes every width
    let raw = [b * width for b in BASE]
    let down = [max(8, int(v + 4) // 8 * 8) for v in raw]
    let W = [d < 0.9 * v ? d + 8 : d for d, v in zip(down, raw)]
    input x: image(in_channels)
    let h = conv_bn_act(x, W[0], k=3, stride=2, act="hswish")
    h = mbconv(h, W[1], k=3, e=1, stride=STRIDES[0], se=SE[0], act=ACTS[0])
    for i in 0..5 {
        let s = i + 1
        repeat {depths} @"s{i}.depth" as j {
            h = ofa_block(h, W[s + 1], j == 0 ? STRIDES[s] : 1, ACTS[s], SE[s], "s{i}.b{j}")
        }
    }
    h = conv_bn_act(h, W[7], k=1, act="hswish")
    let features = hswish(linear(global_avg_pool(h), W[8], bias=false))
    output logits = linear(dropout(features, p=dropout_p), classes)
}
