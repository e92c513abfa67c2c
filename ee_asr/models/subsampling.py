"""Convolutional subsampling fronts (4x, 6x, 8x in time) with a chosen number of channels.

espnet's Conv2dSubsampling* use as many channels as the model dimension; their second
convolution then costs O(d^2) per output cell and dominates a small model's step on a CPU
(about 40% at d=96). Fewer channels keep the same shape of front at a fraction of the cost.
The kernel sizes and strides are espnet's, so output lengths match its `conv2d`, `conv2d6`
and `conv2d8` fronts.
"""

import torch

# (kernel, stride) of each convolution after the first 3x3 stride-2 one
LAYOUTS = {4: [(3, 2)], 6: [(5, 3)], 8: [(3, 2), (3, 2)]}


def _out_size(n, kernel_strides):
    for k, s in kernel_strides:
        n = (n - k) // s + 1
    return n


class Conv2dSubsampling(torch.nn.Module):
    def __init__(self, idim, odim, channels, pos_enc, factor=4):
        super().__init__()
        if factor not in LAYOUTS:
            raise ValueError(f"subsampling factor {factor} is not one of {sorted(LAYOUTS)}")
        self.kernel_strides = [(3, 2)] + LAYOUTS[factor]
        layers, c_in = [], 1
        for k, s in self.kernel_strides:
            layers += [torch.nn.Conv2d(c_in, channels, k, s), torch.nn.ReLU()]
            c_in = channels
        self.conv = torch.nn.Sequential(*layers)
        self.out = torch.nn.Sequential(torch.nn.Linear(channels * _out_size(idim, self.kernel_strides), odim), pos_enc)

    def forward(self, x, x_mask):
        x = self.conv(x.unsqueeze(1))
        b, c, t, f = x.size()
        x = self.out(x.transpose(1, 2).contiguous().view(b, t, c * f))
        if x_mask is not None:
            for k, s in self.kernel_strides:
                x_mask = x_mask[:, :, :1 - k:s]
        return x, x_mask
