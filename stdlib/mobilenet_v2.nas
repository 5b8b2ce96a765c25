# mobilenet_v2.nas: MobileNetV2 (Sandler et al., CVPR 2018, Table 2) as a choice-free space, the
# backbone of the ProxylessNAS and DenseNAS chain spaces. With the defaults it is torchvision's
# mobilenet_v2() layer for layer: 3,504,872 parameters.

import mobile_ops

# t (expansion), c (channels), n (repeats), s (stride of the first repeat), from Table 2
let INVERTED_RESIDUALS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                          [6, 160, 3, 2], [6, 320, 1, 1]]

space mobilenet_v2(classes: int = 1000, dropout_p: float = 0.2, stem: int = 32, last: int = 1280,
                   settings: list = INVERTED_RESIDUALS) {
    input x: image(3)
    let h = conv_bn_act(x, stem, k=3, stride=2)
    for t, c, n, s in settings {
        for i in 0..n {
            h = mbconv(h, c, k=3, e=t, stride=i == 0 ? s : 1)
        }
    }
    h = conv_bn_act(h, last, k=1)
    output logits = linear(dropout(global_avg_pool(h), p=dropout_p), classes)
}
