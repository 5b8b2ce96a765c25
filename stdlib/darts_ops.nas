# darts_ops.nas: the DARTS candidate operations (Liu et al., DARTS, 2019; survey §3.2) and the
# cell preprocessing, as in the authors' code (quark0/darts, cnn/operations.py).
# Every candidate takes (x, C, stride) and maps x to C channels at stride x.stride * stride.

import nn

op none(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op skip_connect(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
    require stride == 2 or x.channels == C, "identity keeps the channel count"
    require stride == 1 or C % 2 == 0, "FactorizedReduce needs an even channel count"
op max_pool_3x3(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
    require x.channels == C, "pooling keeps the channel count"
op avg_pool_3x3(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
    require x.channels == C, "pooling keeps the channel count"
op conv_7x1_1x7(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)

# The convolutional candidates all open with a ReLU of their input; written as blocks, that
# ReLU is one IR node per candidate, which common-subexpression elimination computes once.
# sep_conv: depthwise k×k (stride) -> 1×1 -> BN -> ReLU -> depthwise k×k -> 1×1 -> BN
# dil_conv: depthwise k×k with dilation 2 (stride) -> 1×1 -> BN
op sep_conv(x: image, C: int, k: int, stride: int = 1) -> image(C, x.stride * stride)
    require k % 2 == 1, "kernel size must be odd"
op dil_conv(x: image, C: int, k: int, stride: int = 1, dilation: int = 2)
    -> image(C, x.stride * stride)
    require k % 2 == 1, "kernel size must be odd"

block sep_conv_3x3(x, C: int, stride: int = 1) { return sep_conv(relu(x), C, k=3, stride=stride) }
block sep_conv_5x5(x, C: int, stride: int = 1) { return sep_conv(relu(x), C, k=5, stride=stride) }
block sep_conv_7x7(x, C: int, stride: int = 1) { return sep_conv(relu(x), C, k=7, stride=stride) }
block dil_conv_3x3(x, C: int, stride: int = 1) { return dil_conv(relu(x), C, k=3, stride=stride) }
block dil_conv_5x5(x, C: int, stride: int = 1) { return dil_conv(relu(x), C, k=5, stride=stride) }

# ReLU -> conv k×k -> BN, and the stride-2 FactorizedReduce used to align cell inputs.
op relu_conv_bn(x: image, C: int, k: int = 1, stride: int = 1, padding: int = 0)
    -> image(C, x.stride * stride)
op factorized_reduce(x: image, C: int) -> image(C, x.stride * 2)
    require C % 2 == 0, "FactorizedReduce needs an even channel count"

# The head DARTS attaches to the cell at 2/3 depth when training with an auxiliary loss.
op auxiliary_head_cifar(x: image, classes: int) -> vector(classes)

# The seven non-zero candidates of the DARTS search space (`none` is added by relaxation).
let DARTS_OPS = [max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3,
                 dil_conv_5x5]
