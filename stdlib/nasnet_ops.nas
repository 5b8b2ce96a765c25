# nasnet_ops.nas: the 13 candidate operations of the NASNet search space (Zoph, Vasudevan,
# Shlens & Le, "Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018,
# §3, the list of operations "prevalent in the CNN literature"). Every candidate takes
# (x, C, stride) and maps x to C channels at stride x.stride * stride, as darts_ops does.
#
# Where the paper only names an op, the layout follows the public code: the separable
# convolutions, identity and pools as in tensorflow/models research/slim/nets/nasnet/
# nasnet_utils.py (`_stacked_separable_conv` applies ReLU, separable conv, BN twice, i.e. the
# DARTS `sep_conv`; the identity becomes ReLU, 1x1 conv with the stride, BN when it must
# reduce; pools use SAME padding), and the factorised 1xk-then-kx1 convolution as
# quark0/darts cnn/operations.py writes `conv_7x1_1x7` (ReLU, conv 1xk C_in->C_in, conv kx1
# C_in->C, BN). The dilated convolution is a full (not depthwise) 3x3 convolution with
# dilation 2 followed by BN, as the paper lists it apart from the separable convolutions.

import darts_ops

# conv 1xk (stride (1, s)) C_in->C_in, conv kx1 (stride (s, 1)) C_in->C, BN(C); no ReLU (the
# blocks below apply it as a node of its own, shared by CSE as in darts_ops).
op conv_1xk_kx1(x: image, C: int, k: int, stride: int = 1) -> image(C, x.stride * stride)
    require k % 2 == 1, "kernel size must be odd"
# conv kxk with dilation (stride, padding dilation*(k-1)/2) C_in->C, BN(C); no ReLU.
op dilated_conv(x: image, C: int, k: int = 3, stride: int = 1, dilation: int = 2)
    -> image(C, x.stride * stride)
    require k % 2 == 1, "kernel size must be odd"

# identity; when it must reduce (stride 2) or change the width: ReLU, 1x1 conv, BN
# (nasnet_utils.py `_apply_conv_operation`, operation 'none').
block nasnet_identity(x, C: int, stride: int = 1) {
    return stride == 1 and x.channels == C ? x : relu_conv_bn(x, C, k=1, stride=stride)
}
block conv_1x3_3x1(x, C: int, stride: int = 1) {
    return conv_1xk_kx1(relu(x), C, k=3, stride=stride)
}
block conv_1x7_7x1(x, C: int, stride: int = 1) {
    return conv_1xk_kx1(relu(x), C, k=7, stride=stride)
}
block dilated_conv_3x3(x, C: int, stride: int = 1) {
    return dilated_conv(relu(x), C, k=3, stride=stride)
}
block conv_1x1(x, C: int, stride: int = 1) { return relu_conv_bn(x, C, k=1, stride=stride) }
block conv_3x3(x, C: int, stride: int = 1) {
    return relu_conv_bn(x, C, k=3, stride=stride, padding=1)
}
block max_pool_5x5(x, C: int, stride: int = 1) {
    assert x.channels == C, "pooling keeps the channel count"
    return max_pool(x, k=5, stride=stride)
}
block max_pool_7x7(x, C: int, stride: int = 1) {
    assert x.channels == C, "pooling keeps the channel count"
    return max_pool(x, k=7, stride=stride)
}

# The 13 NASNet operations, in the order of the paper's list (§3).
let NASNET_OPS = [nasnet_identity, conv_1x3_3x1, conv_1x7_7x1, dilated_conv_3x3, avg_pool_3x3,
                  max_pool_3x3, max_pool_5x5, max_pool_7x7, conv_1x1, conv_3x3, sep_conv_3x3,
                  sep_conv_5x5, sep_conv_7x7]
