# mobilenet_chain.nas: a MobileNetV2-style chain space with depth search and nested choices,
# in the manner of ProxylessNAS (Cai et al., 2019) and the layer-level space of DenseNAS (§3.1):
# each stage repeats 1..n layers (a repeat choice); each layer picks its kernel size (an op
# choice), and the expansion ratio of the picked kernel is a value choice nested inside it, so
# it exists only when that kernel is chosen. The width of the last 1x1 layer is a value choice.

import mobile_ops

block mb_layer(x, C: int, stride: int, name: str, k: int) {
    return mbconv(x, C, k=k, e=choose {3, 6} @"{name}.k{k}.e", stride=stride)
}

let KERNELS = [mb_layer[k=3], mb_layer[k=5], mb_layer[k=7]]

# stages: [channels, maximum depth, stride of the first layer], ProxylessNAS widths
space mobilenet_chain(classes: int = 1000, stem: int = 32, first: int = 16,
                      stages: list = [[24, 4, 2], [40, 4, 2], [80, 4, 2], [96, 4, 1], [192, 4, 2],
                                      [320, 1, 1]],
                      last: list = [1280, 1536]) {
    input x: image(3)
    let h = conv_bn_act(x, stem, k=3, stride=2)
    h = mbconv(h, first, k=3, e=1)
    for i, stage in enumerate(stages) {
        let C, depth, stride = stage
        repeat {1..depth + 1} @"s{i}.depth" as j {
            h = choose KERNELS @"s{i}.b{j}" (h, C, j == 0 ? stride : 1, "s{i}.b{j}")
        }
    }
    let features = conv_bn_act(h, choose {last[0], last[1]} @"head.width", k=1)
    output logits = linear(global_avg_pool(features), classes)
}
