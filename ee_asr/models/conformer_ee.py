"""A Conformer encoder with exits: espnet's conformer blocks, run a few layers at a time.

The encoder is driven through an explicit state (`start`, `advance`, `exit_output`) so that
a caller can stop after any exit and never compute the layers above it. Each exit has its
own LayerNorm: the blocks are pre-norm, so their raw outputs are un-normalised, and one
shared final norm would have to serve hidden states of very different scales.
"""

from typing import List, Optional, Sequence, Union

import torch
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm
from espnet.nets.pytorch_backend.transformer.subsampling import check_short_utt
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

from ee_asr.common.errors import UserError
from ee_asr.models.exit_encoder import EncoderState, ExitEncoder
from ee_asr.models.masks import valid_mask
from ee_asr.models.subsampling import KERNEL_STRIDES, Conv2dSubsampling, subsampled_length


class MaskedConvolution(torch.nn.Module):
    """espnet's conformer convolution module, with padded frames zeroed before the depthwise conv.

    espnet's ConvolutionModule convolves the whole padded sequence, and its first pointwise
    conv has a bias, so padding would leak into the last frames of shorter utterances and a
    batch would decode differently from the same utterances one at a time. This runs the same
    sub-modules (same weights) in the same order, masking where the leak would enter. `mask`
    is set by the encoder before each block runs.
    """

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.mask = None

    def forward(self, x):
        c = self.conv
        # The kernel-1 pointwise convolutions run as matrix products on (B, T, C): the same
        # weights and result, but CPU convolution kernels are several times slower for them.
        x = torch.nn.functional.glu(_pointwise(c.pointwise_conv1, x), dim=-1)
        if self.mask is not None:
            x = x.masked_fill(~self.mask.transpose(1, 2), 0.0)
        x = c.activation(c.norm(c.depthwise_conv(x.transpose(1, 2))))
        return _pointwise(c.pointwise_conv2, x.transpose(1, 2))


def _depth_rates(rate, num_blocks):
    """espnet's stochastic_depth_rate: one rate for every block, or a list of one per block."""
    try:
        rates = [float(rate)] * num_blocks if isinstance(rate, (int, float)) else [float(r) for r in rate]
    except (TypeError, ValueError):
        rates = []
    if len(rates) != num_blocks or not all(0.0 <= r < 1.0 for r in rates):
        raise UserError(f"stochastic_depth_rate must be a rate in [0, 1) or {num_blocks} of them, not {rate!r}")
    return rates


def scale_branch_outputs(blocks, scale):
    """Multiply the last projection of every residual branch (attention, feed-forwards, conv) by `scale`.

    With a small scale each block starts close to the identity, so a deep exit starts from the
    hidden state of the exit below it instead of that state plus the noise of untrained blocks.
    """
    for block in blocks:
        branches = [block.self_attn.linear_out, block.feed_forward.w_2]
        if block.feed_forward_macaron is not None:
            branches.append(block.feed_forward_macaron.w_2)
        if block.conv_module is not None:
            branches.append(block.conv_module.pointwise_conv2)
        with torch.no_grad():
            for layer in branches:
                layer.weight.mul_(scale)
                if layer.bias is not None:
                    layer.bias.mul_(scale)


def _pointwise(conv, x):
    return torch.nn.functional.linear(x, conv.weight.squeeze(-1), conv.bias)


class ConformerEEEncoder(ExitEncoder):
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        attention_heads: int = 4,
        linear_units: int = 2048,
        num_blocks: int = 12,
        exit_layers: Sequence[int] = (2, 4, 6, 8, 10, 12),
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.0,
        input_layer: str = "conv2d",
        macaron_style: bool = True,
        use_cnn_module: bool = True,
        cnn_module_kernel: int = 31,
        pos_enc_layer_type: str = "rel_pos",
        selfattention_layer_type: str = "rel_selfattn",
        activation_type: str = "swish",
        subsampling_channels: Optional[int] = None,
        branch_init_scale: float = 1.0,
        stochastic_depth_rate: Union[float, List[float]] = 0.0,
    ):
        super().__init__()
        exit_layers = self.checked_exit_layers(exit_layers, num_blocks)
        body = ConformerEncoder(
            input_size=input_size, output_size=output_size, attention_heads=attention_heads,
            linear_units=linear_units, num_blocks=num_blocks, dropout_rate=dropout_rate,
            positional_dropout_rate=positional_dropout_rate, attention_dropout_rate=attention_dropout_rate,
            input_layer=input_layer, normalize_before=True, macaron_style=macaron_style,
            rel_pos_type="latest", pos_enc_layer_type=pos_enc_layer_type,
            selfattention_layer_type=selfattention_layer_type, activation_type=activation_type,
            use_cnn_module=use_cnn_module, cnn_module_kernel=cnn_module_kernel,
            stochastic_depth_rate=_depth_rates(stochastic_depth_rate, num_blocks))
        # Only the subsampling front and the blocks are kept; exits bring their own norms.
        self.embed = body.embed
        if subsampling_channels is not None:
            if input_layer not in KERNEL_STRIDES:
                raise UserError(f"subsampling_channels is only for input_layer: {' or '.join(KERNEL_STRIDES)}")
            # keep espnet's positional encoding module, replace only the convolutions;
            # espnet keeps the positional encoding in `pos_enc` (conv2d6/8) or last in `out` (conv2d)
            pos_enc = body.embed.pos_enc if hasattr(body.embed, "pos_enc") else body.embed.out[-1]
            self.embed = Conv2dSubsampling(input_size, output_size, subsampling_channels, pos_enc, input_layer)
        self.encoders = body.encoders
        if branch_init_scale != 1.0:
            scale_branch_outputs(self.encoders, branch_init_scale)
        for layer in self.encoders:
            if layer.conv_module is not None:
                layer.conv_module = MaskedConvolution(layer.conv_module)
        self.exit_layers = exit_layers
        self.exit_norms = torch.nn.ModuleList(LayerNorm(output_size) for _ in exit_layers)
        self._output_size = output_size
        # Output lengths come from the front's kernels and strides for an unpadded input. espnet
        # derives them by subsampling the padding mask, which counts up to two frames too many for
        # padded rows; those frames see only padding, and would make a batch decode differently
        # from the same utterances one at a time.
        self._input_layer = input_layer if input_layer in KERNEL_STRIDES else None

    def output_size(self) -> int:
        return self._output_size

    @property
    def num_layers(self) -> int:
        return len(self.encoders)

    def check_lengths(self, num_frames: int, shortest: int):
        """Fail clearly on inputs the front cannot subsample: `num_frames` the padded length,
        `shortest` the shortest utterance's. Plain Python on ints, kept out of `front` so that a
        traced graph (ONNX export) holds no data-dependent branch; exporters call it themselves."""
        short, limit = check_short_utt(self.embed, num_frames)
        if short:
            raise UserError(f"an input of {num_frames} frames is too short for subsampling (needs > {limit})")
        if self._input_layer is not None and subsampled_length(shortest, self._input_layer) < 1:
            raise UserError(f"an input of {shortest} frames is too short for subsampling")

    def accepts(self, num_frames: int) -> bool:
        return not check_short_utt(self.embed, num_frames)[0] and (
            self._input_layer is None or subsampled_length(num_frames, self._input_layer) >= 1)

    def front(self, xs: torch.Tensor, ilens: torch.Tensor) -> EncoderState:
        """The subsampling front and the masks, without length checks (see `check_lengths`)."""
        masks = valid_mask(ilens.to(xs.device), xs.size(1))[:, None, :]
        x, masks = self.embed(xs, masks)
        if self._input_layer is not None:
            hidden = x[0] if isinstance(x, tuple) else x
            olens = subsampled_length(ilens.to(hidden.device), self._input_layer)
            masks = valid_mask(olens, hidden.size(1))[:, None, :]
        return EncoderState(x, masks, 0)

    def advance(self, state: EncoderState, to_layer: int) -> EncoderState:
        x, masks = state.x, state.masks
        for i in range(state.layers_done, to_layer):
            layer = self.encoders[i]
            if layer.conv_module is not None:
                layer.conv_module.mask = masks
            x, masks = layer(x, masks)
        return EncoderState(x, masks, max(to_layer, state.layers_done))
