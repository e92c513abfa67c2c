"""Speed perturbation of a Kaldi data dir (Ko et al. 2015): one copy per factor, resampled by sox
through wav.scp pipes, so no audio is written. Utterance, speaker and recording ids of a copy get
the prefix `sp<factor>-` (factor 1.0 keeps the originals' ids), and segment times are divided
by the factor, because the audio gets shorter as it gets faster."""

from pathlib import Path

from ee_asr.common.errors import UserError
from ee_asr.data.datadir import fix_data_dir, read_table, write_table


def speed_pipe(spec, factor):
    """A wav.scp entry playing `spec` (a path or a `cmd |` pipe) at `factor` times the speed."""
    spec = spec.strip()
    if spec.endswith("|"):
        return f"{spec[:-1].rstrip()} | sox -D -t wav - -t wav - speed {factor} |"
    return f"sox -D {spec} -t wav - speed {factor} |"


def perturb_data_dir(src, dst, factors):
    src, dst = Path(src), Path(dst)
    factors = [float(f) for f in factors]
    if not factors or any(f <= 0 for f in factors):
        raise UserError(f"speed factors must be positive numbers, not {factors}")
    has_segments = (src / "segments").is_file()
    wav, text, utt2spk, segments = [], [], [], []
    for f in factors:
        prefix = "" if f == 1.0 else f"sp{f:g}-"
        for reco, spec, _ in read_table(src / "wav.scp"):
            wav.append((prefix + reco, spec if f == 1.0 else speed_pipe(spec, f)))
        for utt, words, _ in read_table(src / "text"):
            text.append((prefix + utt, words))
        for utt, spk, _ in read_table(src / "utt2spk"):
            utt2spk.append((prefix + utt, prefix + spk))
        if has_segments:
            for utt, value, _ in read_table(src / "segments"):
                reco, start, end = value.split()
                segments.append((prefix + utt, f"{prefix}{reco} {float(start) / f:.3f} {float(end) / f:.3f}"))
    write_table(dst / "wav.scp", wav)
    write_table(dst / "text", text)
    write_table(dst / "utt2spk", utt2spk)
    if has_segments:
        write_table(dst / "segments", segments)
    fix_data_dir(dst)
    return len(text)
