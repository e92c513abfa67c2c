import pytest

from conftest import write_wav
from ee_asr.common.errors import DataError
from ee_asr.data.datadir import fix_data_dir, validate_data_dir


def test_valid_dir_passes(data_dir):
    assert validate_data_dir(data_dir) == 4


def test_unsorted_ids_name_file_and_line(data_dir):
    lines = (data_dir / "text").read_text().splitlines()
    (data_dir / "text").write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    with pytest.raises(DataError, match=r"text:2: not sorted"):
        validate_data_dir(data_dir)


def test_duplicate_id(data_dir):
    lines = (data_dir / "utt2spk").read_text().splitlines()
    (data_dir / "utt2spk").write_text("\n".join(lines[:2] + [lines[1]] + lines[2:]) + "\n")
    with pytest.raises(DataError, match=r"utt2spk:3: duplicate id 'spk1-b'"):
        validate_data_dir(data_dir)


def test_id_missing_from_another_file(data_dir):
    lines = (data_dir / "wav.scp").read_text().splitlines()
    (data_dir / "wav.scp").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"text:4: id 'spk2-b'.*not in .*wav.scp"):
        validate_data_dir(data_dir)


def test_empty_transcript(data_dir):
    (data_dir / "text").write_text("spk1-a hello\nspk1-b\nspk2-a x\nspk2-b y\n")
    with pytest.raises(DataError, match=r"text:2: 'spk1-b' has an empty value"):
        validate_data_dir(data_dir)


def test_non_utf8_text(data_dir):
    (data_dir / "text").write_bytes(b"spk1-a hello\nspk1-b caf\xe9\nspk2-a x\nspk2-b y\n")
    with pytest.raises(DataError, match=r"text:2: is not valid UTF-8"):
        validate_data_dir(data_dir)


def test_missing_and_unreadable_audio(data_dir, tmp_path):
    lines = (data_dir / "wav.scp").read_text().splitlines()
    lines[2] = f"spk2-a {tmp_path}/nowhere.wav"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"wav.scp:3: audio of 'spk2-a'.*does not exist"):
        validate_data_dir(data_dir)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    lines[2] = f"spk2-a {bad}"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"wav.scp:3: audio of 'spk2-a': cannot read"):
        validate_data_dir(data_dir)


def test_another_sample_rate_is_refused_unless_a_pipe_resamples(data_dir, tmp_path):
    write_wav(tmp_path / "8k.wav", sr=8000)
    lines = (data_dir / "wav.scp").read_text().splitlines()
    lines[2] = f"spk2-a {tmp_path}/8k.wav"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"wav.scp:3: audio of 'spk2-a': '.*8k.wav' is at 8000 Hz, the corpus at "
                                        r"16000 Hz: .*'sox .*8k.wav -r 16000 -t wav - \|'"):
        validate_data_dir(data_dir)
    lines[2] = f"spk2-a sox {tmp_path}/8k.wav -r 16000 -t wav - |"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    assert validate_data_dir(data_dir) == 4


def test_a_windows_line_end_is_named_with_its_column(data_dir):
    (data_dir / "text").write_bytes(b"spk1-a hello\nspk1-b good\r\nspk2-a x\nspk2-b y\n")
    with pytest.raises(DataError, match=r"text:2: column 12: U\+000D CARRIAGE RETURN \(a Windows line end"):
        validate_data_dir(data_dir)


def test_spk2utt_must_agree_with_utt2spk(data_dir):
    (data_dir / "spk2utt").write_text("spk1 spk1-a\nspk2 spk1-b spk2-a spk2-b\n")
    with pytest.raises(DataError, match=r"spk2utt"):
        validate_data_dir(data_dir)


def test_fix_sorts_and_rebuilds_spk2utt(data_dir):
    lines = (data_dir / "text").read_text().splitlines()
    (data_dir / "text").write_text("\n".join(reversed(lines)) + "\n")
    (data_dir / "spk2utt").write_text("junk\n")
    fix_data_dir(data_dir)
    assert validate_data_dir(data_dir) == 4
