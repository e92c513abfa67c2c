"""Convolutional subsampling fronts (4x, 6x, 8x in time) with a chosen number of channels.

espnet's Conv2dSubsampling* use as many channels as the model dimension; their second
convolution then costs O(d^2) per output cell and dominates a small model's step on a CPU
(about 40% at d=96). Fewer channels keep the same shape of front at a fraction of the cost.
The kernel sizes and strides are espnet's, so output lengths match its fronts of the same name.
"""

import torch

# (kernel, stride) of each convolution, in time and frequency alike, by espnet's input_layer name
KERNEL_STRIDES = {
    "conv2d": [(3, 2), (3, 2)],
    "conv2d6": [(3, 2), (5, 3)],
    "conv2d8": [(3, 2), (3, 2), (3, 2)],
}


def subsampled_length(n, input_layer):
    """Output frames (or feature bins) of the front for n input ones; n may be an int tensor."""
    for k, s in KERNEL_STRIDES[input_layer]:
        n = (n - k) // s + 1
    return n


class Conv2dSubsampling(torch.nn.Module):
    def __init__(self, idim, odim, channels, pos_enc, input_layer="conv2d"):
        super().__init__()
        if input_layer not in KERNEL_STRIDES:
            raise ValueError(f"input_layer {input_layer} is not one of {sorted(KERNEL_STRIDES)}")
        self.kernel_strides = KERNEL_STRIDES[input_layer]
        layers, c_in = [], 1
        for k, s in self.kernel_strides:
            layers += [torch.nn.Conv2d(c_in, channels, k, s), torch.nn.ReLU()]
            c_in = channels
        self.conv = torch.nn.Sequential(*layers)
        self.out = torch.nn.Sequential(torch.nn.Linear(channels * subsampled_length(idim, input_layer), odim), pos_enc)

    def forward(self, x, x_mask):
        x = self.conv(x.unsqueeze(1))
        b, c, t, f = x.size()
        x = self.out(x.transpose(1, 2).contiguous().view(b, t, c * f))
        if x_mask is not None:
            for k, s in self.kernel_strides:
                x_mask = x_mask[:, :, :1 - k:s]
        return x, x_mask
