# hrnas_ops.nas: the searching block of HR-NAS (Ding et al., "HR-NAS: Searching Efficient
# High-Resolution Neural Architectures with Lightweight Transformers", CVPR 2021, §3.1-3.3).
#
# A searching block (eq. 5) is mixconv(x, ...) + transformer(x, ...). Its search units are the
# hidden channels c3, c5, c7 of the three depthwise branches (3rc of them for expansion 3r)
# and the n tokens of the transformer: 3rc + n per block (§3.3).

# The MixConv path (the authors' InvertedResidualChannels): per kernel k in {3, 5, 7} a branch
# 1x1 C_in->c_k, BN, ReLU; k x k depthwise with `stride`, BN, ReLU; 1x1 c_k->C; the branches are
# summed, then BN; plus the residual (identity at stride 1 with the width kept, else a grouped
# 1x1 conv). A branch with 0 channels is absent.
op mixconv(x: image, C: int, c3: int, c5: int, c7: int, stride: int = 1)
    -> image(C, x.stride * stride)
    require c3 >= 0 and c5 >= 0 and c7 >= 0, "hidden widths must be at least 0"
    require stride == 1 or stride == 2, "a searching block has stride 1 or 2"

# The lightweight transformer (§3.1): projector with the 2-D positional map to n tokens of
# s*s dimensions, encoder, decoder without the first attention (n learnt queries), inverse
# projector resized to the output (half size at stride 2). d: attended dimension, h: heads,
# ffn: the FFN's hidden width in units of s*s (eq. 4: 4). n = 0: all tokens removed, the
# path adds nothing.
op transformer(x: image, C: int, n: int = 64, stride: int = 1, s: int = 8, d: int = 64, h: int = 1,
               ffn: int = 4) -> image(C, x.stride * stride)
    require n >= 0, "the token count must be at least 0"
    require stride == 1 or stride == 2, "a searching block has stride 1 or 2"
    require s >= 1 and d >= 1 and h >= 1 and ffn >= 1, "s, d, h and ffn must be positive"

# Nearest-neighbour upsampling (the fusion module's low-to-high path, nn.Upsample(mode="nearest")
# in the authors' FuseModule).
op upsample_nearest(x: image, factor: int = 2) -> image(x.channels, x.stride // factor)
    require factor >= 1 and x.stride % factor == 0, "cannot upsample above the input resolution"
