"""Hand-written reference networks, written from the papers and the authors' public code, to
check that nasc builds the same networks parameter for parameter.

* ``TinyNetwork``: NAS-Bench-201 (Dong & Yang, 2020; AutoDL-Projects ``tiny_network.py``,
  ``infer_cells.py``, ``cell_operations.py``).
* ``NetworkCIFAR``: the DARTS evaluation network (Liu et al., 2019; quark0/darts ``model.py``,
  ``operations.py``).
"""

from __future__ import annotations

import torch
from torch import nn


# ---- shared DARTS / NB201 operations --------------------------------------------------------
class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, padding, affine=True, dilation=1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, k, stride, padding, dilation=dilation, groups=c_in,
                      bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, padding, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, k, stride, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, k, 1, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x.mul(0.0) if self.stride == 1 else x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out, affine=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def darts_op(name, c, stride):
    return {
        "none": lambda: Zero(stride),
        "avg_pool_3x3": lambda: nn.AvgPool2d(3, stride=stride, padding=1,
                                             count_include_pad=False),
        "max_pool_3x3": lambda: nn.MaxPool2d(3, stride=stride, padding=1),
        "skip_connect": lambda: nn.Identity() if stride == 1 else FactorizedReduce(c, c),
        "sep_conv_3x3": lambda: SepConv(c, c, 3, stride, 1),
        "sep_conv_5x5": lambda: SepConv(c, c, 5, stride, 2),
        "dil_conv_3x3": lambda: DilConv(c, c, 3, stride, 2, 2),
        "dil_conv_5x5": lambda: DilConv(c, c, 5, stride, 4, 2),
    }[name]()


# ---- DARTS NetworkCIFAR ---------------------------------------------------------------------
class DartsCell(nn.Module):
    def __init__(self, genotype, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0)
        ops, idx = zip(*(genotype["reduce"] if reduction else genotype["normal"]))
        self.indices = idx
        self.ops = nn.ModuleList(
            darts_op(name, c, 2 if reduction and i < 2 else 1) for name, i in zip(ops, idx))
        self.multiplier = 4

    def forward(self, s0, s1):
        states = [self.pre0(s0), self.pre1(s1)]
        for n in range(4):
            a, b = 2 * n, 2 * n + 1
            states.append(self.ops[a](states[self.indices[a]])
                          + self.ops[b](states[self.indices[b]]))
        return torch.cat(states[2:], dim=1)


class NetworkCIFAR(nn.Module):
    def __init__(self, c, classes, layers, genotype):
        super().__init__()
        c_curr = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(DartsCell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1).flatten(1))


# ---- NAS-Bench-201 TinyNetwork --------------------------------------------------------------
def nb201_op(name, c):
    return {
        "none": lambda: Zero(1),
        "skip_connect": lambda: nn.Identity(),
        "nor_conv_1x1": lambda: ReLUConvBN(c, c, 1, 1, 0),
        "nor_conv_3x3": lambda: ReLUConvBN(c, c, 3, 1, 1),
        "avg_pool_3x3": lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    }[name]()


EDGES = ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]


class InferCell(nn.Module):
    def __init__(self, arch, c):
        super().__init__()
        self.layers = nn.ModuleDict({e.replace("<-", "_"): nb201_op(arch[e], c) for e in EDGES})

    def forward(self, x):
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(self.layers[f"{j}_{i}"](nodes[i]) for i in range(j)))
        return nodes[3]


class ResNetBasicblock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0),
                                        nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    def __init__(self, c, n, arch, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        chans = [c] * n + [2 * c] + [2 * c] * n + [4 * c] + [4 * c] * n
        reds = [False] * n + [True] + [False] * n + [True] + [False] * n
        cells, c_prev = [], c
        for c_curr, red in zip(chans, reds):
            cells.append(ResNetBasicblock(c_prev, c_curr) if red else InferCell(arch, c_curr))
            c_prev = c_curr
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, classes)

    def forward(self, x):
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h)
        return self.classifier(self.pool(self.lastact(h)).flatten(1))


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---- DARTS search network (model_search.py) ------------------------------------------------
PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


def search_op(name, c, stride):
    op = {
        "none": lambda: Zero(stride),
        "avg_pool_3x3": lambda: nn.AvgPool2d(3, stride=stride, padding=1,
                                             count_include_pad=False),
        "max_pool_3x3": lambda: nn.MaxPool2d(3, stride=stride, padding=1),
        "skip_connect": lambda: nn.Identity() if stride == 1 else FactorizedReduce(c, c, False),
        "sep_conv_3x3": lambda: SepConv(c, c, 3, stride, 1, affine=False),
        "sep_conv_5x5": lambda: SepConv(c, c, 5, stride, 2, affine=False),
        "dil_conv_3x3": lambda: DilConv(c, c, 3, stride, 2, 2, affine=False),
        "dil_conv_5x5": lambda: DilConv(c, c, 5, stride, 4, 2, affine=False),
    }[name]()
    if "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
    return op


class MixedOp(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self._ops = nn.ModuleList(search_op(p, c, stride) for p in PRIMITIVES)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class SearchCell(nn.Module):
    def __init__(self, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.pre0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                     else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False))
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList(
            MixedOp(c, 2 if reduction and j < 2 else 1) for i in range(4) for j in range(2 + i))

    def forward(self, s0, s1, weights):
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(4):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-4:], dim=1)


class SearchNetwork(nn.Module):
    """quark0/darts cnn/model_search.py Network (C=16, 8 layers in the paper)."""

    def __init__(self, c, classes, layers):
        super().__init__()
        c_curr = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, classes)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(14, 8))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(14, 8))

    def weight_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("alphas")]

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            a = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, torch.softmax(a, dim=-1))
        return self.classifier(self.pool(s1).flatten(1))


# ---- PC-DARTS search network (yuhuixu1993/PC-DARTS model_search.py) ------------------------
def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)


class PCMixedOp(nn.Module):
    def __init__(self, c, stride, k=4):
        super().__init__()
        self.k = k
        self.mp = nn.MaxPool2d(2, 2)
        self._ops = nn.ModuleList(search_op(p, c // k, stride) for p in PRIMITIVES)

    def forward(self, x, weights):
        dim = x.shape[1]
        xtemp, xtemp2 = x[:, : dim // self.k], x[:, dim // self.k :]
        temp1 = sum(w * op(xtemp) for w, op in zip(weights, self._ops))
        if temp1.shape[2] == x.shape[2]:
            ans = torch.cat([temp1, xtemp2], dim=1)
        else:
            ans = torch.cat([temp1, self.mp(xtemp2)], dim=1)
        return channel_shuffle(ans, self.k)


class PCSearchCell(SearchCell):
    def __init__(self, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__(c_pp, c_p, c, reduction, reduction_prev)
        self._ops = nn.ModuleList(
            PCMixedOp(c, 2 if reduction and j < 2 else 1) for i in range(4) for j in range(2 + i))

    def forward(self, s0, s1, weights, weights2):
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(4):
            s = sum(weights2[offset + j] * self._ops[offset + j](h, weights[offset + j])
                    for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-4:], dim=1)


class PCSearchNetwork(SearchNetwork):
    """PC-DARTS model_search.py Network: partial channels K=4 and edge normalisation."""

    def __init__(self, c, classes, layers):
        super().__init__(c, classes, layers)
        c_curr = 3 * c
        c_pp, c_p, c_curr = c_curr, c_curr, c
        cells, reduction_prev = [], False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cells.append(PCSearchCell(c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_curr
        self.cells = nn.ModuleList(cells)
        self.betas_normal = nn.Parameter(1e-3 * torch.randn(14))
        self.betas_reduce = nn.Parameter(1e-3 * torch.randn(14))

    def weight_parameters(self):
        return [p for n, p in self.named_parameters()
                if not n.startswith(("alphas", "betas"))]

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            red = cell.reduction
            w = torch.softmax(self.alphas_reduce if red else self.alphas_normal, dim=-1)
            betas = self.betas_reduce if red else self.betas_normal
            n, start, w2 = 3, 2, torch.softmax(betas[0:2], dim=-1)
            for _ in range(3):
                w2 = torch.cat([w2, torch.softmax(betas[start:start + n], dim=-1)])
                start, n = start + n, n + 1
            s0, s1 = s1, cell(s0, s1, w, w2)
        return self.classifier(self.pool(s1).flatten(1))
