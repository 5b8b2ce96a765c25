# nn.nas: the primitive layers every space builds on.
# Each op states how it changes the tensor type; the backend binds it to an implementation.

op conv2d(x: image, C: int, k: int = 3, stride: int = 1, dilation: int = 1,
          padding: int = (k - 1) // 2 * dilation, groups: int = 1, bias: bool = false)
    -> image(C, x.stride * stride)
    require x.channels % groups == 0 and C % groups == 0, "channels must divide into groups"

op batch_norm(x: image, affine: bool = true) -> like(x)
op relu(x: tensor) -> like(x)
op relu6(x: tensor) -> like(x)
op hswish(x: tensor) -> like(x)
op sigmoid(x: tensor) -> like(x)
op dropout(x: tensor, p: float = 0.0) -> like(x)
    require p >= 0.0 and p < 1.0, "dropout probability must be in [0, 1)"
# DARTS drop path (cnn/utils.py drop_path): in training, each sample's path is zeroed with
# probability p and kept paths are scaled by 1/(1-p); nothing in evaluation. Not applied after
# an identity (DARTS applies it to every op of a cell but Identity).
op drop_path(x: image, p: float = 0.0) -> like(x)
    require p >= 0.0 and p < 1.0, "drop path probability must be in [0, 1)"

op max_pool(x: image, k: int = 3, stride: int = 1, padding: int = k // 2)
    -> image(x.channels, x.stride * stride)
op avg_pool(x: image, k: int = 3, stride: int = 1, padding: int = k // 2,
            count_include_pad: bool = false) -> image(x.channels, x.stride * stride)
op global_avg_pool(x: image) -> vector(x.channels)
op linear(x: vector, out: int, bias: bool = true) -> vector(out)
op upsample(x: image, factor: int = 2) -> image(x.channels, x.stride // factor)
    require factor >= 1 and x.stride % factor == 0, "cannot upsample above the input resolution"
