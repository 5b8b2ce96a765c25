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
op sep_conv_3x3(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op sep_conv_5x5(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op sep_conv_7x7(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op dil_conv_3x3(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op dil_conv_5x5(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op conv_7x1_1x7(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)

# ReLU -> conv k×k -> BN, and the stride-2 FactorizedReduce used to align cell inputs.
op relu_conv_bn(x: image, C: int, k: int = 1, stride: int = 1, padding: int = 0)
    -> image(C, x.stride * stride)
op factorized_reduce(x: image, C: int) -> image(C, x.stride * 2)
    require C % 2 == 0, "FactorizedReduce needs an even channel count"

# The head DARTS attaches to the cell at 2/3 depth when training with an auxiliary loss.
op auxiliary_head_cifar(x: image, classes: int) -> vector(classes)

# The seven non-zero candidates of the DARTS search space (`none` is added by relaxation).
let DARTS_OPS = [max_pool_3x3, avg_pool_3x3, skip_connect,
                 sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5]
