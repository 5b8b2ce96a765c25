# mobile_ops.nas: the inverted-residual building blocks of MobileNetV2 (Sandler et al., 2018)
# and of the chain spaces searched by ProxylessNAS and DenseNAS.

import nn

# MBConv: 1x1 expansion to e*C_in (skipped when e == 1), k x k depthwise conv with `stride`,
# optional squeeze-and-excitation, 1x1 linear projection to C; a residual add when the stride
# is 1 and the channel count is kept. The SE block squeezes the expanded width by 4, rounded to a
# multiple of `se_divisor` (1: MnasNet/ProxylessNAS; 8: MobileNetV3 and Once-for-All).
op mbconv(x: image, C: int, k: int = 3, e: int = 6, stride: int = 1, se: bool = false,
          act: "relu6" | "relu" | "hswish" = "relu6", se_divisor: int = 1)
    -> image(C, x.stride * stride)
    require k % 2 == 1, "kernel size must be odd"
    require e >= 1, "expansion ratio must be at least 1"
    require se_divisor >= 1, "the SE width divisor must be at least 1"

# conv -> BN -> activation, the stem and last layers of the mobile networks.
op conv_bn_act(x: image, C: int, k: int = 3, stride: int = 1,
               act: "relu6" | "relu" | "hswish" = "relu6") -> image(C, x.stride * stride)
