"""A Wav2Vec2 encoder with exits: Hugging Face transformers' Wav2Vec2 (convolutional feature
encoder on the raw waveform, then transformer layers), driven layer by layer like the Conformer
(`start`, `advance`, `exit_output`), so dynamic decoding stops computing after the chosen exit.

Input is the raw waveform as (B, samples, 1), which is how stage 2 dumps it for these recipes.
Each exit has its own LayerNorm (as for the Conformer; for pre-norm "stable layer norm"
checkpoints the hidden states between layers are un-normalised). LayerDrop is not applied:
a dropped layer would leave the exit above it trained on a different depth than it decodes with.
Padding: frames beyond an utterance's length are zeroed and masked out of attention, and the
feature encoder's group norm (wav2vec2-base's first layer, per channel over time) takes its
statistics from the utterance's own frames only. transformers lets it see the padding, so a
batch would decode differently from its utterances one by one; base checkpoints were trained
on unpadded crops, which is what the masked statistics reproduce.
"""

from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from ee_asr.common.errors import UserError
from ee_asr.models.exit_encoder import EncoderState, ExitEncoder
from ee_asr.models.masks import valid_mask


def make_config(hf_config):
    """A Wav2Vec2Config from `hf_config`, unknown keys refused by name; LayerDrop always off."""
    conf = dict(hf_config or {})
    known = Wav2Vec2Config().to_dict()
    unknown = [k for k in conf if k not in known]
    if unknown:
        raise UserError(f"encoder_conf.hf_config: unknown Wav2Vec2Config key '{unknown[0]}'")
    conf["layerdrop"] = 0.0
    try:
        return Wav2Vec2Config(**conf)
    except (TypeError, ValueError) as e:
        raise UserError(f"encoder_conf.hf_config: {e}") from None


def scale_branch_outputs(model, scale):
    """Multiply each transformer layer's attention out_proj and feed-forward output_dense by `scale`.

    With pre-norm ("stable layer norm") layers a scale of 0 makes every layer start as the
    identity, so a deep exit starts from the exit below it rather than from that state plus the
    noise of untrained layers: what took the Conformer demo off CTC's all-blank plateau. Only a
    model built from scratch is scaled; a pre-trained checkpoint's weights replace these.
    """
    with torch.no_grad():
        for layer in model.encoder.layers:
            for proj in (layer.attention.out_proj, layer.feed_forward.output_dense):
                proj.weight.mul_(scale)
                if proj.bias is not None:
                    proj.bias.mul_(scale)


def read_pretrained_config(directory):
    """The Wav2Vec2 config of a Hugging Face checkpoint dir, as a dict for `hf_config`; clear errors."""
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"pretrained checkpoint {d} is not a directory (get one with e.g. `huggingface-cli "
                        f"download facebook/wav2vec2-base --local-dir {d}`, or give --pretrained DIR)")
    if not (d / "config.json").is_file():
        raise UserError(f"pretrained checkpoint {d} has no config.json (expected a Hugging Face "
                        f"save_pretrained directory)")
    try:
        config = Wav2Vec2Config.from_pretrained(str(d))
    except (OSError, ValueError) as e:
        raise UserError(f"pretrained checkpoint {d}: config.json is not a Wav2Vec2 config: {e}") from None
    if config.model_type != "wav2vec2":
        raise UserError(f"pretrained checkpoint {d} is a '{config.model_type}' model, not wav2vec2")
    conf = config.to_diff_dict()
    for key in ("transformers_version", "architectures", "_name_or_path", "torch_dtype", "dtype"):
        conf.pop(key, None)
    return conf


def masked_group_norm(h, lengths, norm):
    """`norm` (a GroupNorm with one group per channel) over h (B, C, T), each row's statistics
    from its first `lengths` frames; the frames beyond are normalised too, but nothing valid
    depends on them (the convolutions above have no padding)."""
    mask = valid_mask(lengths, h.size(2))[:, None, :].to(h.dtype)
    count = mask.sum(2, keepdim=True).clamp(min=1)
    mean = (h * mask).sum(2, keepdim=True) / count
    var = (((h - mean) * mask) ** 2).sum(2, keepdim=True) / count
    out = (h - mean) * torch.rsqrt(var + norm.eps)
    return out * norm.weight[None, :, None] + norm.bias[None, :, None]


def _has_group_norm(extractor):
    norm = getattr(extractor.conv_layers[0], "layer_norm", None)
    return isinstance(norm, torch.nn.GroupNorm) and norm.num_groups == norm.num_channels and norm.affine


def feature_encoder(extractor, wave, lengths):
    """transformers' Wav2Vec2FeatureEncoder on (B, samples), with a group-norm first layer's
    statistics masked to each utterance's length."""
    if not _has_group_norm(extractor):
        return extractor(wave)
    first = extractor.conv_layers[0]
    conv, norm = first.conv, first.layer_norm
    h = conv(wave[:, None, :])
    frames = torch.div(lengths - conv.kernel_size[0], conv.stride[0], rounding_mode="floor") + 1
    h = first.activation(masked_group_norm(h, frames, norm))
    for layer in extractor.conv_layers[1:]:
        h = layer(h)
    return h


@contextmanager
def lengths_for_feature_encoder(extractor, lengths):
    """transformers' models call their feature encoder without lengths (Wav2Vec2ForPreTraining, in
    pre-training): within this, that call masks the group norm's statistics as `front` does, so a
    model pre-trained here sees the same features when fine-tuned."""
    if not _has_group_norm(extractor):
        yield
        return
    extractor.forward = lambda wave: feature_encoder(extractor, wave, lengths)
    try:
        yield
    finally:
        del extractor.forward


def additive_mask(valid, dtype):
    """(B, T) bool -> (B, 1, T, T) float: 0 where a key frame is valid, the dtype's minimum where
    it is padding (what transformers' eager and SDPA attention add to the scores)."""
    b, t = valid.shape
    mask = (~valid)[:, None, None, :].to(dtype) * torch.finfo(dtype).min
    return mask.expand(b, 1, t, t)


class Wav2Vec2EEEncoder(ExitEncoder):
    reads_raw_audio = True  # its input frames are waveform samples

    def __init__(self, input_size: int = 1, exit_layers: Sequence[int] = (2, 4, 6, 8, 10, 12),
                 hf_config: Optional[dict] = None, freeze_feature_encoder: bool = True,
                 branch_init_scale: float = 1.0):
        super().__init__()
        if input_size != 1:
            raise UserError(f"wav2vec2_ee reads the raw waveform (input size 1), not {input_size}-dim "
                            f"features: use feats_type raw or raw_online in the recipe")
        config = make_config(hf_config)
        exit_layers = self.checked_exit_layers(exit_layers, config.num_hidden_layers)
        self.model = Wav2Vec2Model(config)
        if branch_init_scale != 1.0:
            scale_branch_outputs(self.model, branch_init_scale)
        self.stable_layer_norm = config.do_stable_layer_norm
        self.freeze_feature_encoder = freeze_feature_encoder
        if freeze_feature_encoder:
            self.model.freeze_feature_encoder()
        self.exit_layers = exit_layers
        self.exit_norms = torch.nn.ModuleList(
            torch.nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) for _ in exit_layers)
        self._output_size = config.hidden_size

    def load_pretrained(self, directory):
        """Copy a Hugging Face checkpoint's weights in (its config must be the one this was built from)."""
        try:
            loaded, info = Wav2Vec2Model.from_pretrained(str(directory), output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise UserError(f"pretrained checkpoint {directory} could not be loaded: {e}") from None
        missing = [k for k in info["missing_keys"] if not k.startswith("masked_spec_embed")]
        if missing:
            raise UserError(f"pretrained checkpoint {directory} lacks {len(missing)} Wav2Vec2 weights "
                            f"(first: {missing[0]})")
        # masked_spec_embed exists only where masking is on: a checkpoint saved without masking
        # (or pre-trained with it) fine-tunes with it (or without), the embedding then starts fresh
        own = self.model.state_dict()
        state = {k: v for k, v in loaded.state_dict().items() if k != "masked_spec_embed" or k in own}
        try:
            result = self.model.load_state_dict(state, strict=False)
        except RuntimeError as e:
            raise UserError(f"pretrained checkpoint {directory} does not match the model config: {e}") from None
        lacking = [k for k in result.missing_keys if k != "masked_spec_embed"] + list(result.unexpected_keys)
        if lacking:
            raise UserError(f"pretrained checkpoint {directory} does not match the model config: "
                            f"{len(lacking)} weights differ (first: {lacking[0]})")

    def output_size(self) -> int:
        return self._output_size

    @property
    def num_layers(self) -> int:
        return len(self.model.encoder.layers)

    def check_lengths(self, num_samples: int, shortest: int):
        """Fail clearly when the shortest input is too short for the feature encoder: plain Python,
        kept out of `front` so that a traced graph (ONNX export) holds no data-dependent branch."""
        if int(self.model._get_feat_extract_output_lengths(torch.tensor(shortest))) < 1:
            raise UserError(f"an input of {shortest} samples is too short for the feature encoder")

    def accepts(self, num_frames: int) -> bool:
        return int(self.model._get_feat_extract_output_lengths(torch.tensor(num_frames))) >= 1

    def front(self, xs: torch.Tensor, ilens: torch.Tensor) -> EncoderState:
        """Feature encoder, projection and positional convolution, without length checks."""
        m = self.model
        wave = xs.squeeze(-1) if xs.dim() == 3 else xs
        olens = m._get_feat_extract_output_lengths(ilens).to(torch.long)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_feature_encoder):
            feats = feature_encoder(m.feature_extractor, wave, ilens.to(wave.device)).transpose(1, 2)
        hidden, _ = m.feature_projection(feats)
        mask = valid_mask(olens.to(hidden.device), hidden.size(1))
        if self.training:
            hidden = m._mask_hidden_states(hidden, attention_mask=mask)
        hidden = hidden.masked_fill(~mask[:, :, None], 0.0)
        enc = m.encoder
        hidden = hidden + enc.pos_conv_embed(hidden)
        if not self.stable_layer_norm:
            hidden = enc.layer_norm(hidden)
        hidden = enc.dropout(hidden)
        return EncoderState(hidden, mask[:, None, :], 0)

    def advance(self, state: EncoderState, to_layer: int) -> EncoderState:
        hidden = state.x
        if state.layers_done < to_layer:
            attn = additive_mask(state.masks.squeeze(1), hidden.dtype)
            for i in range(state.layers_done, to_layer):
                out = self.model.encoder.layers[i](hidden, attention_mask=attn)
                # transformers 4 returns a tuple, 5 may return the hidden states alone
                hidden = out[0] if isinstance(out, tuple) else out
        return EncoderState(hidden, state.masks, max(to_layer, state.layers_done))

    def save_pretrained(self, directory):
        """Write the Wav2Vec2 body (not the exits) as a Hugging Face checkpoint dir."""
        self.model.save_pretrained(str(directory))
